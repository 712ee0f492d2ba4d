"""The store interface: tasks, leases, the audit chain, quarantine, and the reaper lock.

Contract for every implementation (SQLite embedded, PostgreSQL for several broker processes):
- Never holds a plaintext secret: leases carry the SHA-256 fingerprint and the engine handle only.
- Every method is thread-safe, and safe with several broker processes over the same store.
- A state change and its audit event(s) commit in ONE transaction (nothing half-issued, nothing
  unaudited). Audit events are chained with ``broker.audit.chain_hash`` using the key given when the
  store was opened; appends are serialised so the chain has exactly one order (``seq`` ascending).
- Lease state moves only as ``broker.revocation`` allows; the ``begin_*``/``finish_*`` methods are
  compare-and-set on the current state, so two processes revoking one lease never both "win".
- ``try_acquire_reaper_lock`` gives the reaper role to exactly one process at a time (SQLite: a file
  lock; PostgreSQL: an advisory lock); it is re-entrant for the holder and released by ``close``.
- Optional attribute ``inline_reads`` (default False): True only for a store whose calls never wait on
  a network (SQLite); the API then calls it on the event loop on its hot paths.
- Times are UNIX seconds; queries that depend on "now" take it as a parameter (tests inject clocks).

Stores are opened by URL through ``broker.store.registry.open_store``.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from jitsec.broker.model import AuditEvent, AuditRecord, Lease, LeaseState, Page, Task

IN_FLIGHT_SECONDS = 30.0
"""How long a revocation begun by one caller is its own before the reaper's retry pass may take it."""


@dataclass(frozen=True, slots=True)
class RevocationUpdate:
    """The result of one revocation attempt, applied only while the lease is ``revoking``.

    ``state`` is REVOKED or FAILED (terminal), or REVOKING again with a later ``next_attempt_at``.
    """

    lease_id: str
    state: LeaseState
    at: float
    attempts: int
    next_attempt_at: float | None = None
    last_error: str | None = None


@runtime_checkable
class Store(Protocol):
    def migrate(self) -> None:
        """Create or upgrade the schema; idempotent; safe to call from every process at start."""
        ...

    def close(self) -> None: ...

    # tasks -----------------------------------------------------------------------------------------
    def create_task(self, task: Task, event: AuditEvent) -> None: ...

    def get_task(self, task_id: str) -> Task | None: ...

    def redeem_grant(self, task_id: str, now: float, token_lease: Lease, event: AuditEvent) -> bool:
        """If the task's grant was never redeemed: mark it redeemed at ``now``, add the task-token lease
        and the event, return True. Otherwise change nothing and return False (the caller audits replay)."""
        ...

    def complete_task(self, task_id: str, now: float, event: AuditEvent) -> bool:
        """Set ``completed_at`` if unset (with the event); False if it was already completed."""
        ...

    def open_tasks_of_agent(self, agent: str, now: float) -> list[Task]: ...

    # leases ----------------------------------------------------------------------------------------
    def add_lease(self, lease: Lease, event: AuditEvent) -> None: ...

    def get_lease(self, lease_id: str) -> Lease | None: ...

    def lease_by_fingerprint(self, sha256: str) -> Lease | None:
        """The lease whose secret has this hex SHA-256 (any state), or None."""
        ...

    def leases_of_task(self, task_id: str, states: Collection[LeaseState] | None = None) -> list[Lease]: ...

    def leases_of_agent(self, agent: str, states: Collection[LeaseState] | None = None) -> list[Lease]: ...

    def live_leases(self, cursor: str | None, limit: int, now: float) -> Page:
        """Active, unexpired leases ordered by ``lease_id``, starting after ``cursor``."""
        ...

    def leases_due(self, now: float, limit: int) -> list[Lease]:
        """Active leases with ``expires_at <= now``, earliest first (the reaper's work)."""
        ...

    def leases_to_retry(self, now: float, limit: int) -> list[Lease]:
        """Leases in ``revoking`` whose ``next_attempt_at <= now`` (crash leftovers and retries)."""
        ...

    def next_deadline(self) -> float | None:
        """The earliest active ``expires_at`` or revoking ``next_attempt_at``; None when idle."""
        ...

    def shorten_expiry(self, lease_id: str, expires_at: float, event: AuditEvent) -> bool:
        """Lower an active lease's ``expires_at`` (rotation grace); never raises it."""
        ...

    def begin_revocation(self, lease_ids: Sequence[str], reason: str, detail: str, now: float) -> list[Lease]:
        """Move the still-active ones to ``revoking`` (reason, detail, requested_at, next_attempt_at =
        now + IN_FLIGHT_SECONDS) and return them as updated. Leases not active are skipped (someone else
        got there first). The caller attempts them at once; the later ``next_attempt_at`` keeps the
        reaper's retry pass off an attempt in flight, and picks the lease up if its caller died."""
        ...

    def finish_revocation(self, updates: Sequence[RevocationUpdate], events: Sequence[AuditEvent]) -> None:
        """Apply the updates to leases still in ``revoking`` and append the events, in one transaction."""
        ...

    # audit -----------------------------------------------------------------------------------------
    def append_audit(self, events: Sequence[AuditEvent]) -> None: ...

    def audit_records(self, after_seq: int = 0, limit: int = 1000) -> list[AuditRecord]:
        """Records with ``seq > after_seq`` in ``seq`` order (page through the whole chain)."""
        ...

    # agents ----------------------------------------------------------------------------------------
    def set_quarantined(self, agent: str, quarantined: bool, event: AuditEvent) -> None: ...

    def is_quarantined(self, agent: str) -> bool: ...

    # coordination ----------------------------------------------------------------------------------
    def try_acquire_reaper_lock(self) -> bool: ...
