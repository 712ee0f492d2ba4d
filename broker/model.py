"""The broker's records: tasks, leases, audit events. Frozen, typed, and never holding a plaintext secret.

Times are UNIX seconds (float, UTC). A task token is itself a lease of the internal engine
``TASK_TOKEN_ENGINE``, so that expiry, completion, leak lookup by fingerprint and audit treat it like
any other broker-issued credential.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from enum import Enum

TASK_TOKEN_ENGINE = "task-token"


class LeaseState(Enum):
    """Revocation is a persisted state machine: see ``broker.revocation`` for the allowed moves."""

    ACTIVE = "active"
    REVOKING = "revoking"  # revocation started; the engine has not confirmed yet (retries pending)
    REVOKED = "revoked"  # terminal: the engine confirmed (or the credential was already gone)
    FAILED = "failed"  # terminal: retries exhausted or a permanent engine error; always alerted


class Role(Enum):
    ORCHESTRATOR = "orchestrator"
    SCANNER = "scanner"
    RESOURCE = "resource"
    ADMIN = "admin"
    AGENT_GRANT = "agent-grant"
    AGENT_TASK_TOKEN = "agent-task-token"
    ANALYST = "analyst"  # works the fleet's incidents: list, acknowledge, resolve, assign, annotate


PRINCIPAL_ROLES = (Role.ORCHESTRATOR, Role.SCANNER, Role.RESOURCE, Role.ADMIN, Role.ANALYST)


def new_id(prefix: str) -> str:
    """Opaque identifiers (not secrets): a short prefix naming the kind and 96 random bits."""
    return f"{prefix}_{secrets.token_hex(12)}"


@dataclass(frozen=True, slots=True)
class Task:
    """One task of one agent. The grant is held as its SHA-256 only; it can be redeemed once."""

    task_id: str
    agent: str
    name: str
    scopes: tuple[str, ...]
    created_at: float
    expires_at: float
    grant_sha256: str
    grant_expires_at: float
    created_by: str
    redeemed_at: float | None = None
    completed_at: float | None = None

    def is_open(self, now: float) -> bool:
        return self.completed_at is None and now < self.expires_at


@dataclass(frozen=True, slots=True)
class Lease:
    """One issued credential: everything needed to find it (fingerprint) and to revoke it (engine,
    handle), never the secret itself."""

    lease_id: str
    task_id: str
    agent: str
    engine: str
    scopes: tuple[str, ...]
    issued_at: float
    expires_at: float
    fingerprint: str  # hex SHA-256 of the secret
    handle: str = ""  # what the engine needs to revoke (e.g. a role name); "" when nothing
    state: LeaseState = LeaseState.ACTIVE
    revoke_reason: str | None = None
    revoke_detail: str | None = None
    revoke_requested_at: float | None = None
    revoked_at: float | None = None
    attempts: int = 0
    next_attempt_at: float | None = None
    last_error: str | None = None
    rotated_from: str | None = None
    username: str | None = None

    def is_live(self, now: float) -> bool:
        """Usable right now: active and not past its expiry (expiry holds even if the reaper is late)."""
        return self.state is LeaseState.ACTIVE and now < self.expires_at

    @property
    def is_task_token(self) -> bool:
        return self.engine == TASK_TOKEN_ENGINE


class AuditKind(Enum):
    TASK_START = "task_start"
    TASK_COMPLETE = "task_complete"
    ISSUE = "issue"
    DENY = "deny"
    REDEEM = "redeem"
    REPLAY = "replay"
    USE = "use"
    ROTATE = "rotate"
    REVOKE = "revoke"
    EXPIRE = "expire"
    REVOKE_RETRY = "revoke_retry"
    REVOKE_FAILED = "revoke_failed"
    LEAK = "leak"
    QUARANTINE = "quarantine"
    RELEASE = "release"
    INCIDENT = "incident"  # a fleet incident changed (resource: its id; detail: what changed)


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """What happened, before the store chains it. ``detail`` is free text and must hold no secret."""

    kind: AuditKind
    at: float
    principal: str = ""
    agent: str = ""
    task_id: str = ""
    lease_id: str = ""
    engine: str = ""
    scopes: tuple[str, ...] = ()
    resource: str = ""
    detail: str = ""


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """An event as stored: its sequence number and its place in the hash chain."""

    seq: int
    event: AuditEvent
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class Page:
    """A page of leases and the cursor for the next one (None at the end)."""

    leases: tuple[Lease, ...]
    next_cursor: str | None = None
