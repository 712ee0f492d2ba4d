"""Keyed fingerprints for findings, baselines and alerts.

An unkeyed hash of a low-entropy third-party password can be brute-forced from a report; an HMAC with
a deployment-local key cannot. The key lives in a 0600 file (created on first use) or comes from
``JITSEC_FINGERPRINT_KEY`` (hex, or any string of at least 16 characters).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

PREFIX = "hmac-sha256:"
KEY_ENV = "JITSEC_FINGERPRINT_KEY"
KEY_BYTES = 32


class FingerprintKeyError(RuntimeError):
    """The fingerprint key could not be read or created."""


def default_key_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    home = env.get("JITSEC_HOME")
    base = Path(home) if home else Path.home() / ".config" / "jitsec"
    return base / "fingerprint.key"


class Fingerprinter:
    """HMAC-SHA256 of a secret under a local key; safe to write to reports and baselines."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("a fingerprint key needs at least 16 bytes")
        self._key = key

    def fingerprint(self, secret: str) -> str:
        digest = hmac.new(self._key, secret.encode("utf-8", "surrogatepass"), hashlib.sha256)
        return PREFIX + digest.hexdigest()

    def __repr__(self) -> str:
        return "Fingerprinter(key=<hidden>)"

    @classmethod
    def load_or_create(
        cls, path: Path | None = None, *, env: Mapping[str, str] | None = None
    ) -> Fingerprinter:
        """The key from ``JITSEC_FINGERPRINT_KEY``, else from ``path`` (default under ``$JITSEC_HOME`` or
        ``~/.config/jitsec/``), creating that file with mode 0600 when missing."""
        env = os.environ if env is None else env
        override = env.get(KEY_ENV)
        if override:
            return cls(_key_from_text(override))
        path = path or default_key_path(env)
        try:
            return cls(bytes.fromhex(path.read_text(encoding="ascii").strip()))
        except FileNotFoundError:
            pass
        except (OSError, ValueError) as error:
            raise FingerprintKeyError(f"cannot read fingerprint key {path}: {error}") from error
        key = secrets.token_bytes(KEY_BYTES)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process created it first: use theirs
            return cls.load_or_create(path, env={})
        except OSError as error:
            raise FingerprintKeyError(f"cannot create fingerprint key {path}: {error}") from error
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            handle.write(key.hex() + "\n")
        return cls(key)


def _key_from_text(text: str) -> bytes:
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = text.encode("utf-8")
    if len(key) < 16:
        raise FingerprintKeyError(f"{KEY_ENV} must hold at least 16 bytes (32 hex digits)")
    return key
