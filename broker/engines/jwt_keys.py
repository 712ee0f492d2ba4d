"""The JWT engine's key ring: one current signing key and the public halves of retired ones.

A folder holds ``ring.json`` (what is current, what was retired and until when it stays published) and
the current key's PEM file (mode 0600, through ``broker.signing_file``). Rotation makes a new current
key and keeps the old one's public JWK in the JWKS until ``published_until``, the moment the last token
it signed has expired; its private key file is deleted at once (nothing signs with it any more).

Several processes share a ring (uvicorn workers, ``jitsec broker jwt rotate-key`` beside a running
broker): changes happen under an exclusive ``flock`` and ``ring.json`` is replaced atomically, so a
reader sees the old ring or the new one, and a process notices a rotation by the file's identity.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jitsec.broker.errors import ConfigError
from jitsec.broker.signing import Signer
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
    """The ring in ``folder``. ``open`` creates it on first use (one key), so a new broker just starts."""

    def __init__(self, folder: Path, generate: Callable[[Path], Signer] = generate_key_file,
                 load: Callable[[Path], Signer] = load_key_file) -> None:
        self.folder = folder
        self._generate, self._load = generate, load

    def __repr__(self) -> str:
        return f"KeyRing({str(self.folder)!r})"

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
            self._write(self._renamed(self._generate(self._key_path(""))), now, ())

    def read(self) -> RingState:
        raw = self._raw()
        try:
            current = raw["current"]
            retired = tuple(RetiredKey(jwk=dict(item["jwk"]), retired_at=float(item["retired_at"]),
                                       published_until=float(item["published_until"]))
                            for item in raw.get("retired", []))
            signer = self._load(self.folder / str(current["file"]))
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
            old_file = self.folder / str(self._raw()["current"]["file"])
            signer = self._renamed(self._generate(self._key_path("")))
            retired = RetiredKey(jwk=old.signer.public_jwk(), retired_at=now,
                                 published_until=now + keep_seconds)
            kept = tuple(key for key in old.retired if key.published_until > now)
            self._write(signer, now, (*kept, retired))
            old_file.unlink(missing_ok=True)
            return self.read(), retired

    # files ----------------------------------------------------------------------------------------
    def _key_path(self, kid: str) -> Path:
        return self.folder / (f"{kid}.pem" if kid else f".new-{os.getpid()}.pem")

    def _renamed(self, signer: Signer) -> Signer:
        """A freshly generated key file takes its key id as its name."""
        os.replace(self._key_path(""), self._key_path(signer.key_id))
        return signer

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

    def _write(self, signer: Signer, now: float, retired: tuple[RetiredKey, ...]) -> None:
        document = {
            "version": RING_VERSION,
            "current": {"kid": signer.key_id, "file": f"{signer.key_id}.pem", "created_at": now},
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
