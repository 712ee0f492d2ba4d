"""What a master key may do, whichever custody holds it, and the file-backed implementations.

``MacKey`` is an HMAC-SHA256 key used through ``mac`` only; ``Sealer`` opens (and, at init, closes)
small secrets such as an engine's admin password. ``Custody`` bundles the keys one running broker
uses and says where they live (``kind``: ``file`` or ``hsm``), for ``/healthz`` and conformance.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from jitsec.broker.errors import ConfigError

FILE = "file"
HSM = "pkcs11"  # as the config names it, and as /healthz reports it
ANCHOR_DOMAIN = b"jitsec audit anchor v1"


class CustodyError(ConfigError):
    """A key store that cannot be used: module missing, token absent, PIN wrong, key not found. The
    message names the token and never holds the PIN."""


@runtime_checkable
class MacKey(Protocol):
    """An HMAC-SHA256 key. ``mac`` is deterministic and thread-safe; the key bytes are not reachable."""

    def mac(self, data: bytes) -> bytes: ...


@runtime_checkable
class Sealer(Protocol):
    """Seals and opens short secrets with a key-encryption key (authenticated: a changed blob fails).
    ``context`` is bound to the blob (what the secret is for), so a blob cannot be moved elsewhere."""

    def seal(self, secret: str, context: str) -> str: ...

    def unseal(self, blob: str, context: str) -> str: ...


@dataclass(frozen=True, slots=True)
class HmacKey:
    """A MAC key held in process memory (the file custody)."""

    secret: bytes = field(repr=False)

    def mac(self, data: bytes) -> bytes:
        return hmac.new(self.secret, data, hashlib.sha256).digest()


def as_mac_key(key: MacKey | bytes) -> MacKey:
    """Raw bytes (a file-held key, as older callers pass it) or an already usable key."""
    return HmacKey(key) if isinstance(key, bytes) else key


@dataclass(slots=True)
class Custody:
    """The master keys of one broker process. ``close`` logs out of the token (a no-op for files)."""

    kind: str
    audit: MacKey
    anchor: MacKey
    sealer: Sealer | None = None
    closer: Callable[[], None] = field(default=lambda: None, repr=False)
    session: object | None = field(default=None, repr=False)  # the token session (hsm), for signers

    def close(self) -> None:
        self.closer()


def file_custody(audit_key: bytes) -> Custody:
    """Keys from the config file: the anchor key is derived from the audit key (one secret to keep, two
    uses kept apart). No sealer: without a token, secrets come from files or the environment."""
    return Custody(kind=FILE, audit=HmacKey(audit_key),
                   anchor=HmacKey(hmac.new(audit_key, ANCHOR_DOMAIN, hashlib.sha256).digest()))


class NoKey:
    """For readers of the audit (export): opening a store this way needs no token, and any attempt to
    append through it fails instead of writing an unverifiable record."""

    def mac(self, data: bytes) -> bytes:
        raise CustodyError("this store was opened read-only: no audit key")
