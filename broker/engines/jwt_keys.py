"""The JWT engine's key ring: one current signing key and the public halves of retired ones.

A folder holds ``ring.json`` (what is current, what was retired and until when it stays published) and
the current key's PEM file (mode 0600, through ``broker.signing_file``); or, when the ring is given a
token label prefix, the current key is a non-extractable pair in the broker's PKCS#11 token (labelled
``PREFIX-<8 hex>``, reached through ``SigningKeys``) and ``ring.json`` names its label. Rotation makes
a new current key and keeps the old one's public JWK in the JWKS until ``published_until``, the moment
the last token it signed has expired; its private key (file or token pair) is deleted at once (nothing
signs with it any more).

Several processes share a ring (uvicorn workers, ``jitsec broker jwt rotate-key`` beside a running
broker): changes happen under an exclusive ``flock`` and ``ring.json`` is replaced atomically, so a
reader sees the old ring or the new one, and a process notices a rotation by the file's identity.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jitsec.broker.errors import ConfigError
from jitsec.broker.signing import TOKEN_PREFIX, Signer, SigningKeys
from jitsec.broker.signing_file import generate_key_file, load_key_file

RING_FILE = "ring.json"
LOCK_FILE = ".lock"
RING_VERSION = 1


@dataclass(frozen=True, slots=True)
class RetiredKey:
    jwk: Mapping[str, str]
    retired_at: float
    published_until: float  # retired_at + the longest a token it signed may still live


@dataclass(frozen=True, slots=True)
class RingState:
    """One reading of the ring: the signer to use now and the retired keys still worth publishing."""

    signer: Signer
    retired: tuple[RetiredKey, ...] = ()

    def jwks(self, now: float) -> dict[str, list[dict[str, str]]]:
        """The JSON Web Key Set: the current key first, then retired keys whose tokens may still live."""
        keys = [self.signer.public_jwk()]
        keys += [dict(key.jwk) for key in self.retired if key.published_until > now]
        return {"keys": keys}


class KeyRing:
    """The ring in ``folder``. ``open`` creates it on first use (one key), so a new broker just starts.
    With ``token_labels`` (a label prefix) and ``keys``, new keys are made in the token; a ring made
    with file keys keeps signing with its file key until the next rotation makes a token key."""

    def __init__(self, folder: Path, keys: SigningKeys | None = None, token_labels: str = "") -> None:
        if token_labels and keys is None:
            raise ConfigError(f"{folder}: keys in a PKCS#11 token need the broker's key custody")
        self.folder = folder
        self._keys, self._labels = keys, token_labels

    def __repr__(self) -> str:
        where = f", token_labels={self._labels!r}" if self._labels else ""
        return f"KeyRing({str(self.folder)!r}{where})"

    @property
    def in_token(self) -> bool:
        """New keys are made in a PKCS#11 token (signing is a call to the device)."""
        return bool(self._labels)

    @property
    def ring_file(self) -> Path:
        return self.folder / RING_FILE

    def stamp(self) -> tuple[int, int] | None:
        """Identity of ``ring.json`` now (inode, mtime): it changes with every rotation."""
        try:
            status = self.ring_file.stat()
        except FileNotFoundError:
            return None
        return status.st_ino, status.st_mtime_ns

    def open(self, now: float) -> RingState:
        """The ring as it is, created with a first key when the folder holds none."""
        if self.ring_file.exists():
            return self.read()
        with self._locked():
            self._create_if_absent(now)
            return self.read()

    def _create_if_absent(self, now: float) -> None:
        if not self.ring_file.exists():
            self._write(*self._new_key(), now, ())

    def read(self) -> RingState:
        raw = self._raw()
        try:
            current = raw["current"]
            retired = tuple(RetiredKey(jwk=dict(item["jwk"]), retired_at=float(item["retired_at"]),
                                       published_until=float(item["published_until"]))
                            for item in raw.get("retired", []))
            signer = self._load(current)
        except (KeyError, TypeError, ValueError):
            raise ConfigError(f"{self.ring_file}: not a key ring this version understands") from None
        if signer.key_id != current.get("kid"):
            raise ConfigError(f"{self.ring_file}: the current key file does not match its key id")
        return RingState(signer=signer, retired=retired)

    def rotate(self, now: float, keep_seconds: float) -> tuple[RingState, RetiredKey]:
        """Make a new current key; the old one stays published for ``keep_seconds`` (the longest TTL
        a token it signed may have, plus a margin for processes that have not reloaded yet)."""
        with self._locked():
            self._create_if_absent(now)
            old = self.read()
            old_current = self._raw()["current"]
            signer, where = self._new_key()
            retired = RetiredKey(jwk=old.signer.public_jwk(), retired_at=now,
                                 published_until=now + keep_seconds)
            kept = tuple(key for key in old.retired if key.published_until > now)
            self._write(signer, where, now, (*kept, retired))
            self._drop(old_current)
            return self.read(), retired

    # keys -----------------------------------------------------------------------------------------
    def _new_key(self) -> tuple[Signer, dict[str, str]]:
        """A new key and where ``ring.json`` records it: ``{"key": "pkcs11:LABEL"}`` in the token, or
        ``{"file": "<kid>.pem"}`` (a fresh key file takes its key id as its name)."""
        if self._labels and self._keys is not None:
            reference = f"{TOKEN_PREFIX}{self._labels}-{secrets.token_hex(4)}"
            return self._keys.create(reference), {"key": reference}
        draft = self.folder / f".new-{os.getpid()}.pem"
        signer = generate_key_file(draft)
        os.replace(draft, self.folder / f"{signer.key_id}.pem")
        return signer, {"file": f"{signer.key_id}.pem"}

    def _load(self, current: Mapping[str, Any]) -> Signer:
        if "key" not in current:
            return load_key_file(self.folder / str(current["file"]))
        if self._keys is None:
            raise ConfigError(f"{self.ring_file}: the current key {current['key']} is in a PKCS#11 token; "
                              "this engine has no key custody to reach it")
        return self._keys.open(str(current["key"]))

    def _drop(self, current: Mapping[str, Any]) -> None:
        """Delete a retired key's private half (its public JWK lives on in ``ring.json``)."""
        if "key" in current and self._keys is not None:
            self._keys.destroy(str(current["key"]))
        elif "file" in current:
            (self.folder / str(current["file"])).unlink(missing_ok=True)

    # files ----------------------------------------------------------------------------------------

    def _raw(self) -> dict[str, Any]:
        try:
            raw = json.loads(self.ring_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{self.ring_file}: no key ring here") from None
        except json.JSONDecodeError:
            raise ConfigError(f"{self.ring_file}: not valid JSON") from None
        if not isinstance(raw, dict) or raw.get("version") != RING_VERSION:
            raise ConfigError(f"{self.ring_file}: not a key ring this version understands")
        return raw

    def _write(self, signer: Signer, where: Mapping[str, str], now: float,
               retired: tuple[RetiredKey, ...]) -> None:
        document = {
            "version": RING_VERSION,
            "current": {"kid": signer.key_id, **where, "created_at": now},
            "retired": [{"jwk": dict(key.jwk), "retired_at": key.retired_at,
                         "published_until": key.published_until} for key in retired],
        }
        temporary = self.folder / f".{RING_FILE}.{os.getpid()}"
        temporary.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        os.replace(temporary, self.ring_file)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as error:
            raise ConfigError(f"{self.folder}: cannot create the key folder: {error.strerror}") from None
        descriptor = os.open(self.folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)
