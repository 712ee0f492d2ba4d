"""The engine protocol: what every secret engine (token, postgres, jwt, ...) implements.

The contract is written out, with a worked example and how a separate package adds an engine kind
through the ``jitsec.engines`` entry-point group, in docs/engines.md; ``tests/broker/engine_contract.py``
checks it for any engine. In short:
- ``validate_scopes`` is pure and cheap; it raises ``ScopeError`` naming the first bad scope. The broker
  calls it before policy checks and before ``issue``.
- ``issue`` creates one fresh, unique credential that stops working at ``request.expires_at`` on its own
  where the target system allows it (e.g. PostgreSQL ``VALID UNTIL``). It returns everything needed to
  revoke later in ``handle`` (a string the store keeps; e.g. a role name), and, when the secret a leak
  would expose is not ``secret`` itself (a private key the agent kept), the leak ``fingerprint``. It may raise
  ``TransientEngineError`` or ``EngineError``; then nothing was issued.
- ``revoke`` is idempotent: revoking something already gone returns ``RevokeOutcome.ALREADY_GONE``.
  Raise ``TransientEngineError`` to ask for a retry (the broker retries with backoff and jitter) or
  ``EngineError`` for a permanent failure (the lease goes to the terminal ``failed`` state and alerts).
- ``reconcile`` (optional) receives the handles the store believes live and revokes anything of the
  engine's own making that is not among them (orphans after a crash between issue and store).
- Engines are called from several threads at once; they must be thread-safe.
- Exception messages and logs must never contain the secret.
- Optional attribute ``blocking_io`` (default True): set it False only if ``issue`` does no network or
  disk I/O; the API then issues on the event loop instead of the thread pool (the token engine does).
- ``public_documents`` (optional, ``Publishing``) names documents served without authentication (a
  JWKS, a revocation list); each is rendered on every request, so it may change while the broker runs.

Engines are built by ``broker.engines.registry.build_engine`` from ``[engines.<name>]`` in the config.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from jitsec.broker.signing import SigningKeys


class RevokeOutcome(Enum):
    REVOKED = "revoked"
    ALREADY_GONE = "already_gone"


@dataclass(frozen=True, slots=True)
class EngineLimits:
    """Per-engine TTL bounds from the config; policy may lower them per agent, never raise them."""

    default_ttl_seconds: int = 300
    max_ttl_seconds: int = 3600

    def __post_init__(self) -> None:
        if not 0 < self.default_ttl_seconds <= self.max_ttl_seconds:
            raise ValueError("need 0 < default_ttl_seconds <= max_ttl_seconds")


@dataclass(frozen=True, slots=True)
class EngineSettings:
    """What a factory receives: the engine's name, its limits and its own options (the rest of the
    ``[engines.<name>]`` table, e.g. a DSN). ``public_url`` is where clients reach the broker (for
    what an engine writes into a credential: a JWT's issuer, a certificate's CRL address);
    ``config_dir`` is the config file's folder, which relative paths in ``options`` are read from.
    ``signing_keys`` is where an engine that signs (jwt, x509) makes and finds its keys when an option
    names one (``pkcs11:LABEL`` in the broker's token, or a file); the broker passes its key custody's,
    ``None`` (an engine built outside a broker) allows file keys only."""

    name: str
    limits: EngineLimits = field(default_factory=EngineLimits)
    options: Mapping[str, Any] = field(default_factory=dict)
    public_url: str = "http://127.0.0.1:8470"
    config_dir: Path | None = None
    signing_keys: SigningKeys | None = field(default=None, repr=False, compare=False)

    def path(self, value: str) -> Path:
        """An option naming a file or folder, relative to the config's folder."""
        relative = Path(value)
        return relative if relative.is_absolute() or self.config_dir is None else self.config_dir / relative


@dataclass(frozen=True, slots=True)
class IssueRequest:
    """One credential to issue. ``lease_id`` is unique and may be used to name things (role names).
    ``public_key`` is the agent's own public material (an OpenSSH public key, a PEM CSR) for engines
    that certify a key the agent made and kept; empty for engines that make the secret themselves."""

    lease_id: str
    agent: str
    task_id: str
    task_name: str
    scopes: tuple[str, ...]
    ttl_seconds: int
    expires_at: float
    public_key: str = ""


@dataclass(frozen=True, slots=True)
class IssuedCredential:
    """The engine's answer. ``secret`` goes to the agent once and is never stored; ``handle`` is stored.
    ``details`` are non-secret facts the agent needs (host, database) and are returned with the secret."""

    secret: str
    handle: str = ""
    username: str | None = None
    details: Mapping[str, str] = field(default_factory=dict)
    # the lease's leak fingerprint when it is not the SHA-256 of ``secret`` (a certificate: the hash of
    # the public key, which a scanner can derive from the leaked private key)
    fingerprint: str = ""

    def __repr__(self) -> str:  # never print the secret, even in a traceback's locals
        return f"IssuedCredential(handle={self.handle!r}, username={self.username!r}, secret=<redacted>)"


@runtime_checkable
class Engine(Protocol):
    name: str
    limits: EngineLimits

    def validate_scopes(self, scopes: Sequence[str]) -> None: ...

    def issue(self, request: IssueRequest) -> IssuedCredential: ...

    def revoke(self, handle: str) -> RevokeOutcome: ...

    def close(self) -> None: ...


@runtime_checkable
class Reconciling(Protocol):
    """Optional engine capability, checked with ``isinstance(engine, Reconciling)``."""

    def reconcile(self, live_handles: Collection[str]) -> int:
        """Revoke engine-side credentials not in ``live_handles``; return how many were removed."""
        ...


@dataclass(frozen=True, slots=True)
class PublicDocument:
    """A document an engine publishes without authentication at ``path`` (``/.well-known/jwks.json``,
    a KRL, a CRL). ``render`` is called on every GET, from the event loop: it must be quick and must not
    block (answer from memory, refreshed by the engine)."""

    path: str
    media_type: str
    render: Callable[[], bytes]
    max_age_seconds: int = 60  # Cache-Control for verifiers that fetch it


@runtime_checkable
class Publishing(Protocol):
    """Optional engine capability, checked with ``isinstance(engine, Publishing)`` when the API is built.
    Two engines may not publish the same path (the broker refuses to start)."""

    def public_documents(self) -> Sequence[PublicDocument]: ...
