"""The token engine: opaque bearer tokens in the broker's own format (``jit_`` + base62 + CRC).

A token lives only as a lease in the store: resource servers check it with ``POST /v1/introspect``,
so revoking it is the store's state change and the engine has nothing to undo.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Sequence

import regex
from jitsec.broker.engines.base import (
    EngineLimits,
    EngineSettings,
    IssuedCredential,
    IssueRequest,
    RevokeOutcome,
)
from jitsec.broker.errors import ConfigError, ScopeError

from jitsec.kernel.credential_format import CredentialKind, mint
from jitsec.kernel.redaction import shown

_SCOPE = regex.compile(r"[a-z0-9][a-z0-9_.\-]*(?::[a-z0-9_.\-]+)*")
MAX_SCOPE_LENGTH = 128


class UrandomDigits:
    """A ``randbelow`` for base62 digits from one ``os.urandom`` read per token instead of one call per
    character (the hot path of issuance). Unbiased: bytes >= 248 (= 4 x 62) are rejected. One instance
    per token; not shared between threads."""

    def __init__(self, chunk: int = 64) -> None:
        self._chunk = chunk
        self._buffer = b""
        self._position = 0

    def __call__(self, bound: int) -> int:
        if bound != 62:
            return secrets.randbelow(bound)
        while True:
            if self._position >= len(self._buffer):
                self._buffer, self._position = os.urandom(self._chunk), 0
            byte = self._buffer[self._position]
            self._position += 1
            if byte < 248:
                return byte % 62


class TokenEngine:
    """Mints ``jit_`` tokens. ``randbelow`` is injectable for tests; a CSPRNG by default."""

    blocking_io = False  # minting is CPU only: the API may call it on the event loop

    def __init__(
        self,
        name: str = "token",
        limits: EngineLimits | None = None,
        randbelow: Callable[[int], int] | None = None,
    ) -> None:
        self.name = name
        self.limits = limits or EngineLimits()
        self._randbelow = randbelow

    def validate_scopes(self, scopes: Sequence[str]) -> None:
        """Scopes look like ``resource:action`` (lowercase letters, digits, ``_.-``, colon-separated)."""
        for scope in scopes:
            if len(scope) > MAX_SCOPE_LENGTH or "*" in scope or not _SCOPE.fullmatch(scope):
                raise ScopeError(
                    f"scope {shown(scope)!r} is not of the form 'resource:action' "
                    "(lowercase letters, digits, '_', '.', '-', separated by ':')"
                )

    def issue(self, request: IssueRequest) -> IssuedCredential:
        randbelow = self._randbelow or UrandomDigits()
        return IssuedCredential(secret=mint(CredentialKind.ENGINE_TOKEN, randbelow=randbelow))

    def revoke(self, handle: str) -> RevokeOutcome:
        return RevokeOutcome.REVOKED

    def close(self) -> None:
        return None


def create(settings: EngineSettings) -> TokenEngine:
    """Registry factory for ``[engines.token]``; takes no options beyond the TTL limits."""
    if settings.options:
        unknown = ", ".join(sorted(settings.options))
        raise ConfigError(
            f"engines.{settings.name}: unknown key(s) {unknown} (the token engine takes only "
            "kind, default_ttl_seconds, max_ttl_seconds)"
        )
    return TokenEngine(name=settings.name, limits=settings.limits)
