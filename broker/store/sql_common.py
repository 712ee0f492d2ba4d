# ruff: noqa: S608  (SQL text is built from constant column lists, table names and marks only; values are bound)
"""The SQL both stores share: column lists, statement texts and the row <-> model mapping.

SQLite and PostgreSQL run the same task, lease and audit statements; only the placeholder (``?`` or
``%s``), the table prefix (none or ``jitsec.``) and how scopes are stored (JSON text or ``text[]``)
differ. Each store builds one ``SqlDialect`` at import and keeps for itself only what really differs:
connections, transactions and locking, audit sequencing, ``IN``/``ANY``, upserts, migrations.

Every ``state`` test in these statements is written from ``broker.lifecycle``'s table (``state_test``):
the compare-and-set of a step matches exactly the step's source states, and the queries for live and
pending leases match ``REVOCABLE`` and ``PENDING``. No rule about lease states is spelled here.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any

import regex
from jitsec.broker.audit import GENESIS, chain_hash
from jitsec.broker.custody.base import MacKey
from jitsec.broker.lifecycle import MOVES, PENDING, REVOCABLE, RevocationUpdate, Step
from jitsec.broker.model import AuditEvent, AuditKind, AuditRecord, Lease, LeaseState, Task

LEASE_COLUMNS = (
    "lease_id, task_id, agent, engine, scopes, issued_at, expires_at, fingerprint, handle, "
    "state, revoke_reason, revoke_detail, revoke_requested_at, revoked_at, attempts, "
    "next_attempt_at, last_error, rotated_from, username"
)
TASK_COLUMNS = (
    "task_id, agent, name, scopes, created_at, expires_at, grant_sha256, grant_expires_at, "
    "created_by, redeemed_at, completed_at"
)
AUDIT_ROW_COLUMNS = (
    "at, kind, principal, agent, task_id, lease_id, engine, scopes, resource, detail, prev_hash, hash"
)
AUDIT_COLUMNS = f"seq, {AUDIT_ROW_COLUMNS}"
"""The audit columns ``SqlDialect.audit_rows`` fills, in that order (``seq`` first: it is under the MAC)."""


_STATE_VALUE = regex.compile(r"[a-z_]+")


def state_test(states: Collection[LeaseState | None]) -> str:
    """``state = 'a'`` or ``state IN ('a', 'b')``: literal, so that a partial index on one state serves it.

    The values are ``LeaseState`` members' own (checked to be plain words); nothing a caller sends.
    """
    values = sorted(state.value for state in states if state is not None)
    if not values or len(values) != len(states) or not all(_STATE_VALUE.fullmatch(v) for v in values):
        raise ValueError(f"not a set of stored lease states: {states!r}")
    if len(values) == 1:
        return f"state = '{values[0]}'"
    quoted = ", ".join(f"'{value}'" for value in values)
    return f"state IN ({quoted})"


REVOCABLE_TEST = state_test(REVOCABLE)
PENDING_TEST = state_test(PENDING)


def revocation_values(update: RevocationUpdate) -> tuple[object, ...]:
    """Parameters of ``SqlDialect.finish_revocation`` for one update (``revoked_at`` only once revoked);
    the last is the attempt count the update was computed from, so each attempt applies at most once."""
    return (
        update.state.value,
        update.revoked_at,
        update.attempts,
        update.next_attempt_at,
        update.last_error,
        update.lease_id,
        update.attempts - 1,
    )


class SqlDialect:
    """One database's spelling of the shared statements (built once) and its row <-> model mapping.

    ``encode_scopes``/``decode_scopes`` convert a scope tuple to and from its stored form.
    """

    def __init__(
        self,
        *,
        mark: str,
        prefix: str,
        encode_scopes: Callable[[Sequence[str]], object],
        decode_scopes: Callable[[Any], tuple[str, ...]],
    ) -> None:
        self.mark = mark
        self._encode_scopes = encode_scopes
        self._decode_scopes = decode_scopes
        m = mark
        tasks, leases, audit, quarantine = (prefix + t for t in ("tasks", "leases", "audit", "quarantine"))
        self._leases = leases
        select_tasks = f"SELECT {TASK_COLUMNS} FROM {tasks}"
        select_leases = f"SELECT {LEASE_COLUMNS} FROM {leases}"

        self.insert_task = f"INSERT INTO {tasks} ({TASK_COLUMNS}) VALUES ({self.marks(11)})"
        self.get_task = f"{select_tasks} WHERE task_id = {m}"
        self.redeem_grant = (
            f"UPDATE {tasks} SET redeemed_at = {m} WHERE task_id = {m} AND redeemed_at IS NULL"
        )
        self.complete_task = (
            f"UPDATE {tasks} SET completed_at = {m} WHERE task_id = {m} AND completed_at IS NULL"
        )
        self.open_tasks_of_agent = (
            f"{select_tasks} WHERE agent = {m} AND completed_at IS NULL AND expires_at > {m}"
        )

        self.insert_lease = f"INSERT INTO {leases} ({LEASE_COLUMNS}) VALUES ({self.marks(19)})"
        self.get_lease = f"{select_leases} WHERE lease_id = {m}"
        self.lease_by_fingerprint = f"{select_leases} WHERE fingerprint = {m}"
        # the two below are completed by each store's own state filter (IN list or ANY array)
        self.leases_of_task = f"{select_leases} WHERE task_id = {m}"
        self.leases_of_agent = f"{select_leases} WHERE agent = {m}"
        self.live_leases = (
            f"{select_leases} WHERE {REVOCABLE_TEST} AND expires_at > {m} "
            f"AND lease_id > {m} ORDER BY lease_id LIMIT {m}"
        )
        self.leases_due = (
            f"{select_leases} WHERE {REVOCABLE_TEST} AND expires_at <= {m} ORDER BY expires_at LIMIT {m}"
        )
        self.leases_to_retry = (
            f"{select_leases} WHERE {PENDING_TEST} "
            f"AND next_attempt_at <= {m} ORDER BY next_attempt_at LIMIT {m}"
        )
        # revocations begun and never attempted (their process died in flight) become due now
        self.reclaim_in_flight = (
            f"UPDATE {leases} SET next_attempt_at = {m} WHERE {PENDING_TEST} AND attempts = 0 "
            f"AND next_attempt_at > {m}"
        )
        self.shorten_expiry = (
            f"UPDATE {leases} SET expires_at = {m} WHERE lease_id = {m} "
            f"AND {REVOCABLE_TEST} AND expires_at > {m}"
        )
        # one compare-and-set per step, on the step's own source states and the attempt count read: of
        # two attempts made at once on one lease (a second ``complete`` while the first is revoking),
        # only the first to commit applies
        self._finish_revocation = {
            step: (
                f"UPDATE {leases} SET state = {m}, revoked_at = {m}, attempts = {m}, next_attempt_at = {m}, "
                f"last_error = {m} WHERE lease_id = {m} AND attempts = {m} AND {state_test(move.sources)} "
                "RETURNING lease_id"
            )
            for step, move in MOVES.items()
            if None not in move.sources
        }

        self.audit_records = f"SELECT {AUDIT_COLUMNS} FROM {audit} WHERE seq > {m} ORDER BY seq LIMIT {m}"
        self.audit_head = f"SELECT seq, hash FROM {audit} ORDER BY seq DESC LIMIT 1"
        self.unquarantine = f"DELETE FROM {quarantine} WHERE agent = {m}"
        self.is_quarantined = f"SELECT 1 FROM {quarantine} WHERE agent = {m}"

    def marks(self, count: int) -> str:
        """``count`` placeholders for a VALUES or IN list."""
        return ", ".join([self.mark] * count)

    def begin_revocation(self, lease_id_test: str) -> str:
        """The compare-and-set of ``Step.BEGIN`` (from its sources to its target), returning the moved leases.

        Parameters: reason, detail, requested_at, next_attempt_at, then whatever ``lease_id_test``
        (``IN (...)`` or ``= ANY(...)``, the one part the dialects spell differently) binds.
        """
        m = self.mark
        begin = MOVES[Step.BEGIN]
        return (
            f"UPDATE {self._leases} SET state = '{begin.target.value}', revoke_reason = {m}, "
            f"revoke_detail = {m}, revoke_requested_at = {m}, next_attempt_at = {m} "
            f"WHERE {state_test(begin.sources)} AND lease_id {lease_id_test} RETURNING {LEASE_COLUMNS}"
        )

    def finish_revocation(
        self, updates: Sequence[RevocationUpdate]
    ) -> list[tuple[str, list[tuple[object, ...]]]]:
        """The compare-and-sets applying ``updates``: (statement, parameter rows) per step. Each statement
        returns the lease id when its row applied."""
        grouped: dict[Step, list[tuple[object, ...]]] = {}
        for update in updates:
            grouped.setdefault(update.step, []).append(revocation_values(update))
        return [(self._finish_revocation[step], rows) for step, rows in grouped.items()]

    # rows -> models ----------------------------------------------------------------------------
    def lease(self, row: Sequence[Any]) -> Lease:
        """A lease from a row of ``LEASE_COLUMNS``."""
        return Lease(
            lease_id=row[0],
            task_id=row[1],
            agent=row[2],
            engine=row[3],
            scopes=self._decode_scopes(row[4]),
            issued_at=row[5],
            expires_at=row[6],
            fingerprint=row[7],
            handle=row[8],
            state=LeaseState(row[9]),
            revoke_reason=row[10],
            revoke_detail=row[11],
            revoke_requested_at=row[12],
            revoked_at=row[13],
            attempts=row[14],
            next_attempt_at=row[15],
            last_error=row[16],
            rotated_from=row[17],
            username=row[18],
        )

    def task(self, row: Sequence[Any]) -> Task:
        """A task from a row of ``TASK_COLUMNS``."""
        return Task(
            task_id=row[0],
            agent=row[1],
            name=row[2],
            scopes=self._decode_scopes(row[3]),
            created_at=row[4],
            expires_at=row[5],
            grant_sha256=row[6],
            grant_expires_at=row[7],
            created_by=row[8],
            redeemed_at=row[9],
            completed_at=row[10],
        )

    def audit_record(self, row: Sequence[Any]) -> AuditRecord:
        """An audit record from a row of ``AUDIT_COLUMNS``."""
        return AuditRecord(
            seq=row[0],
            event=AuditEvent(
                kind=AuditKind(row[2]),
                at=row[1],
                principal=row[3],
                agent=row[4],
                task_id=row[5],
                lease_id=row[6],
                engine=row[7],
                scopes=self._decode_scopes(row[8]),
                resource=row[9],
                detail=row[10],
            ),
            prev_hash=row[11],
            hash=row[12],
        )

    # models -> parameters ----------------------------------------------------------------------
    def task_values(self, task: Task) -> tuple[object, ...]:
        """Parameters of ``insert_task``."""
        return (
            task.task_id,
            task.agent,
            task.name,
            self._encode_scopes(task.scopes),
            task.created_at,
            task.expires_at,
            task.grant_sha256,
            task.grant_expires_at,
            task.created_by,
            task.redeemed_at,
            task.completed_at,
        )

    def lease_values(self, lease: Lease) -> tuple[object, ...]:
        """Parameters of ``insert_lease``."""
        return (
            lease.lease_id,
            lease.task_id,
            lease.agent,
            lease.engine,
            self._encode_scopes(lease.scopes),
            lease.issued_at,
            lease.expires_at,
            lease.fingerprint,
            lease.handle,
            lease.state.value,
            lease.revoke_reason,
            lease.revoke_detail,
            lease.revoke_requested_at,
            lease.revoked_at,
            lease.attempts,
            lease.next_attempt_at,
            lease.last_error,
            lease.rotated_from,
            lease.username,
        )

    def audit_rows(
        self, key: MacKey, head: tuple[int, str] | None, events: Iterable[AuditEvent]
    ) -> list[tuple[object, ...]]:
        """``events`` chained after the chain's ``head`` (seq, hash; None when empty), as rows of
        ``AUDIT_COLUMNS`` numbered from the head's seq + 1.

        The caller must hold the audit append lock from reading the head until it inserts the rows.
        """
        seq, prev = head if head is not None else (0, GENESIS)
        rows: list[tuple[object, ...]] = []
        for event in events:
            seq += 1
            digest = chain_hash(key, prev, event, seq)
            rows.append(
                (
                    seq,
                    event.at,
                    event.kind.value,
                    event.principal,
                    event.agent,
                    event.task_id,
                    event.lease_id,
                    event.engine,
                    self._encode_scopes(event.scopes),
                    event.resource,
                    event.detail,
                    prev,
                    digest,
                )
            )
            prev = digest
        return rows
