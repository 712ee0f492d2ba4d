"""The store interface: tasks, leases, the audit chain, quarantine, and the reaper lock.

Contract for every implementation (SQLite embedded, PostgreSQL for several broker processes):
- Never holds a plaintext secret: leases carry the SHA-256 fingerprint and the engine handle only.
- Every method is thread-safe, and safe with several broker processes over the same store.
- A state change and its audit event(s) commit in ONE transaction (nothing half-issued, nothing
  unaudited). Audit events are chained with ``broker.audit.chain_hash`` using the key given when the
  store was opened; appends are serialised so the chain has exactly one order (``seq`` ascending).
- Lease state moves only as ``broker.lifecycle.TRANSITIONS`` allows, and only through
  ``broker.lifecycle.LeaseMachine``: the four writes of lease state (``add_lease``, ``redeem_grant``,
  ``begin_revocation``, ``finish_revocation``) are declared, with their contracts, in
  ``broker.lifecycle.LeaseWrites``. The last two are compare-and-set on the source states the table
  gives each step, so two processes revoking one lease never both "win".
- ``try_acquire_reaper_lock`` gives the reaper role to exactly one process at a time (SQLite: a file
  lock; PostgreSQL: an advisory lock); it is re-entrant for the holder and released by ``close``.
- Optional attribute ``inline_reads`` (default False): True only for a store whose calls never wait on
  a network (SQLite); the API then calls it on the event loop on its hot paths.
- ``incidents`` (``broker.incidents.records.IncidentRecords``): the fleet's incidents, kept in the
  same database, each change committed with its audit record(s); its own contract is in that module.
- Times are UNIX seconds; queries that depend on "now" take it as a parameter (tests inject clocks).

Stores are opened by URL through ``broker.store.registry.open_store``.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Protocol, runtime_checkable

from jitsec.broker.incidents.records import IncidentRecords
from jitsec.broker.lifecycle import LeaseWrites
from jitsec.broker.model import AuditEvent, AuditRecord, Lease, LeaseState, Page, Task

IN_FLIGHT_SECONDS = 30.0
"""How long a revocation begun by one caller is its own before the reaper's retry pass may take it."""


@runtime_checkable
class Store(LeaseWrites, Protocol):
    incidents: IncidentRecords

    def migrate(self) -> None:
        """Create or upgrade the schema; idempotent; safe to call from every process at start."""
        ...

    def close(self) -> None: ...

    # tasks -----------------------------------------------------------------------------------------
    def create_task(self, task: Task, event: AuditEvent) -> None: ...

    def get_task(self, task_id: str) -> Task | None: ...

    def complete_task(self, task_id: str, now: float, event: AuditEvent) -> bool:
        """Set ``completed_at`` if unset (with the event); False if it was already completed."""
        ...

    def open_tasks_of_agent(self, agent: str, now: float) -> list[Task]: ...

    # leases ----------------------------------------------------------------------------------------
    def get_lease(self, lease_id: str) -> Lease | None: ...

    def lease_by_fingerprint(self, sha256: str) -> Lease | None:
        """The lease whose secret has this hex SHA-256 (any state), or None."""
        ...

    def leases_of_task(self, task_id: str, states: Collection[LeaseState] | None = None) -> list[Lease]: ...

    def leases_of_agent(self, agent: str, states: Collection[LeaseState] | None = None) -> list[Lease]: ...

    def live_leases(self, cursor: str | None, limit: int, now: float) -> Page:
        """Live leases (state in ``lifecycle.REVOCABLE``, unexpired) ordered by ``lease_id``, starting
        after ``cursor``."""
        ...

    def leases_due(self, now: float, limit: int) -> list[Lease]:
        """Leases in ``REVOCABLE`` with ``expires_at <= now``, earliest first (the reaper's work)."""
        ...

    def leases_to_retry(self, now: float, limit: int) -> list[Lease]:
        """Leases in ``lifecycle.PENDING`` whose ``next_attempt_at <= now`` (crash leftovers and retries)."""
        ...

    def reclaim_in_flight(self, now: float) -> int:
        """Make due now every revocation that was begun but never attempted (``attempts == 0``): at a
        broker's start, those are revocations a crashed process had in flight. They would otherwise
        wait ``IN_FLIGHT_SECONDS``. Safe while other replicas run: an attempt is idempotent and its
        outcome a compare-and-set. Returns how many."""
        ...

    def next_deadline(self) -> float | None:
        """The earliest ``expires_at`` in ``REVOCABLE`` or ``next_attempt_at`` in ``PENDING`` (None: idle)."""
        ...

    def shorten_expiry(self, lease_id: str, expires_at: float, event: AuditEvent) -> bool:
        """Lower the ``expires_at`` of a lease in ``REVOCABLE`` (rotation grace); never raises it.
        Not a move: the state stays as it is."""
        ...

    # audit -----------------------------------------------------------------------------------------
    def append_audit(self, events: Sequence[AuditEvent]) -> None: ...

    def audit_records(self, after_seq: int = 0, limit: int = 1000) -> list[AuditRecord]:
        """Records with ``seq > after_seq`` in ``seq`` order (page through the whole chain)."""
        ...

    def audit_head(self) -> tuple[int, str] | None:
        """The last record's ``seq`` and hash (None for an empty chain): what an anchor checkpoints."""
        ...

    # agents ----------------------------------------------------------------------------------------
    def set_quarantined(self, agent: str, quarantined: bool, event: AuditEvent) -> None: ...

    def is_quarantined(self, agent: str) -> bool: ...

    # coordination ----------------------------------------------------------------------------------
    def try_acquire_reaper_lock(self) -> bool: ...
