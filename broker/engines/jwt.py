"""The jwt engine: OAuth 2.0 access tokens as signed JWTs (RFC 9068), verifiable offline.

A token is ``header.claims.signature`` (``typ`` ``at+jwt``, ES256 by default), its claims made by
``broker.engines.jwt_claims`` from the scopes policy granted, its ``jti`` the lease id, its ``exp`` the
lease's expiry. It is signed through a ``Signer`` from the engine's key ring (``broker.engines.jwt_keys``)
and the ring's public keys are published at ``/.well-known/jwks.json``, next to the RFC 8414 metadata at
``/.well-known/oauth-authorization-server``.

Revocation: a resource server that verifies offline trusts a token until its ``exp`` (keep TTLs short);
one that introspects (``POST /v1/introspect``, which finds the lease by the SHA-256 of the whole token)
sees a revoked token inactive at once. The engine keeps no state per token, so ``revoke`` has nothing
to undo and there is nothing to reconcile after a crash: a token no lease backs is unknown to
introspection and dies at its ``exp``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

import orjson
from jitsec.broker.custody.signers import CustodyKeys
from jitsec.broker.engines.base import (
    EngineLimits,
    EngineSettings,
    IssuedCredential,
    IssueRequest,
    PublicDocument,
    RevokeOutcome,
)
from jitsec.broker.engines.jwt_claims import claims, header, validate_scopes
from jitsec.broker.engines.jwt_keys import KeyRing, RingState
from jitsec.broker.errors import ConfigError
from jitsec.broker.signing import TOKEN_PREFIX
from jitsec.broker.signing_file import b64url

log = logging.getLogger("jitsec.broker.engines.jwt")
JWKS_PATH = "/.well-known/jwks.json"
METADATA_PATH = "/.well-known/oauth-authorization-server"
INTROSPECTION_PATH = "/v1/introspect"
RELOAD_SECONDS = 1.0  # how often the ring file is checked for a rotation by another process
OPTIONS = ("keys", "ring")
DEFAULT_FOLDER = "jwt-keys"


def _compact(document: object) -> bytes:
    """Compact UTF-8 JSON, keys in insertion order (orjson: a few µs less per token than json)."""
    return orjson.dumps(document)


class JwtEngine:
    """Issues RFC 9068 access tokens. Thread-safe: the ring state is swapped whole under a lock."""

    def __init__(self, ring: KeyRing, issuer: str, *, name: str = "jwt", limits: EngineLimits | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        # file keys: signing is CPU only (the ring is re-read at most once a second), so the API may issue
        # on the event loop; a token signs over PKCS#11 (a device round trip): the thread pool then
        self.blocking_io = ring.in_token
        self.name = name
        self.limits = limits or EngineLimits()
        self.issuer = issuer
        self._ring, self._clock = ring, clock
        self._lock = threading.Lock()
        self._stamp = ring.stamp()  # before reading: a rotation in between is seen at the next check
        state = ring.open(clock())
        self._signing = (state, self._encoded_header(state))  # swapped as one, never torn
        self._checked = time.monotonic()

    def __repr__(self) -> str:
        return f"JwtEngine(name={self.name!r}, issuer={self.issuer!r}, ring={self._ring!r})"

    def validate_scopes(self, scopes: Sequence[str]) -> None:
        validate_scopes(scopes)

    def issue(self, request: IssueRequest) -> IssuedCredential:
        state, encoded_header = self._current()
        body = b64url(_compact(claims(request, self.issuer, self._clock())))
        signing_input = f"{encoded_header}.{body}"
        signature = state.signer.sign(signing_input.encode("ascii"))
        return IssuedCredential(secret=f"{signing_input}.{b64url(signature)}", handle=request.lease_id,
                                details={"token_type": "Bearer", "issuer": self.issuer,
                                         "key_id": state.signer.key_id})

    def revoke(self, handle: str) -> RevokeOutcome:
        """Nothing to undo: the lease's state is the revocation (introspection reads it)."""
        return RevokeOutcome.REVOKED

    def close(self) -> None:
        return None

    def public_documents(self) -> Sequence[PublicDocument]:
        return (
            PublicDocument(JWKS_PATH, "application/json", self._jwks),
            PublicDocument(METADATA_PATH, "application/json", self._metadata, max_age_seconds=3600),
        )

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return self._current()[0].jwks(self._clock())

    # internals ------------------------------------------------------------------------------------
    def _jwks(self) -> bytes:
        return _compact(self.jwks())

    def _metadata(self) -> bytes:
        """RFC 8414 metadata. The broker has no OAuth token endpoint (tokens are leases of tasks, asked
        for with ``POST /v1/secrets``), so no grant or response type is offered."""
        return _compact({
            "issuer": self.issuer,
            "jwks_uri": self.issuer + JWKS_PATH,
            "introspection_endpoint": self.issuer + INTROSPECTION_PATH,
            "response_types_supported": [],
            "grant_types_supported": [],
            "token_endpoint_auth_methods_supported": [],
            "introspection_endpoint_auth_methods_supported": ["bearer"],
            "access_token_signing_alg_values_supported": [self._current()[0].signer.algorithm],
        })

    def _current(self) -> tuple[RingState, str]:
        """The ring state, re-read when another process rotated the key (checked once a second)."""
        if time.monotonic() - self._checked >= RELOAD_SECONDS:
            with self._lock:
                if time.monotonic() - self._checked >= RELOAD_SECONDS:
                    stamp = self._ring.stamp()
                    if stamp != self._stamp:
                        self._reload(stamp)
                    self._checked = time.monotonic()
        return self._signing

    def _reload(self, stamp: tuple[int, int] | None) -> None:
        try:
            state = self._ring.open(self._clock())
        except ConfigError as error:  # a ring being repaired by hand: keep signing with the key in hand
            log.error("engine %s: key ring not reloaded, still signing with key %s: %s",
                      self.name, self._signing[0].signer.key_id, error)
            return
        self._signing, self._stamp = (state, self._encoded_header(state)), stamp
        log.info("engine %s: signing with key %s", self.name, state.signer.key_id)

    @staticmethod
    def _encoded_header(state: RingState) -> str:
        return b64url(_compact(header(state.signer.key_id, state.signer.algorithm)))


def create(settings: EngineSettings) -> JwtEngine:
    """Registry factory for ``[engines.jwt]``."""
    return JwtEngine(key_ring(settings), settings.public_url, name=settings.name, limits=settings.limits)


def key_ring(settings: EngineSettings) -> KeyRing:
    """The engine's key ring from its options: ``keys`` is the ring's folder (default ``jwt-keys``
    beside the config), created with a first key when absent; or ``keys = "pkcs11:PREFIX"`` puts the
    keys in the broker's PKCS#11 token (labelled ``PREFIX-<8 hex>``) and ``ring`` names the folder
    of ``ring.json`` (default ``jwt-keys``)."""
    unknown = sorted(set(settings.options) - set(OPTIONS))
    if unknown:
        raise ConfigError(f"engines.{settings.name}: unknown key(s) {', '.join(unknown)} (the jwt engine "
                          "takes kind, default_ttl_seconds, max_ttl_seconds, keys, ring)")
    keys, ring = settings.options.get("keys", DEFAULT_FOLDER), settings.options.get("ring")
    if not isinstance(keys, str) or not keys:
        raise ConfigError(f"engines.{settings.name}.keys must be a folder path or \"pkcs11:PREFIX\"")
    if not keys.startswith(TOKEN_PREFIX):
        if ring is not None:
            raise ConfigError(f"engines.{settings.name}.ring is only for keys in a token (keys = "
                              "\"pkcs11:PREFIX\"); with key files, keys is the ring's folder")
        return KeyRing(settings.path(keys))
    prefix = keys.removeprefix(TOKEN_PREFIX)
    if not prefix or len(prefix) > 40:
        raise ConfigError(f"engines.{settings.name}.keys: the token label prefix must be 1-40 characters")
    folder = DEFAULT_FOLDER if ring is None else ring
    if not isinstance(folder, str) or not folder:
        raise ConfigError(f"engines.{settings.name}.ring must be a folder path")
    custody = settings.signing_keys or CustodyKeys(None, settings.config_dir)
    return KeyRing(settings.path(folder), custody, token_labels=prefix)
