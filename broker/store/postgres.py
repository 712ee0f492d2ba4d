# ruff: noqa: S608  (SQL text is built from constant column lists and "%s" marks only; values are bound)
"""The shared store: PostgreSQL, so that several broker processes serve one set of tasks and leases.

Each store object keeps a small pool of autocommit connections; every write is one transaction.
Coordination uses PostgreSQL itself, no home-made clustering:
- audit appends take a transaction-scoped advisory lock before reading the chain's head, so several
  writers produce exactly one chain (the lock is released by the commit that inserts the records);
- the reaper role is a session-level advisory lock held on a dedicated connection: it is released
  when that connection ends, so killing the holder hands the role to the next process that asks;
- ``migrate`` runs under an advisory lock, so every process may call it at start.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
from jitsec.broker.custody.base import MacKey, as_mac_key
from jitsec.broker.incidents.records import AuditAppend, IncidentSql, SqlIncidentRecords
from jitsec.broker.lifecycle import RevocationUpdate, applied_events
from jitsec.broker.model import AuditEvent, AuditRecord, Lease, LeaseState, Page, Task, new_id
from jitsec.broker.store.base import IN_FLIGHT_SECONDS
from jitsec.broker.store.postgres_migrations import MIGRATIONS, SCHEMA
from jitsec.broker.store.sql_common import AUDIT_COLUMNS, PENDING_TEST, REVOCABLE_TEST, SqlDialect
from psycopg import sql

# Advisory lock keys (per database): arbitrary constants, spelled so a DBA can recognise them.
AUDIT_LOCK_KEY = 0x6A69747365630101
MIGRATE_LOCK_KEY = 0x6A69747365630102
REAPER_LOCK_KEY = 0x6A69747365630103

_SQL = SqlDialect(
    mark="%s",
    prefix="jitsec.",
    encode_scopes=list,  # text[]: psycopg adapts a list to an array and loads the array as a list
    decode_scopes=tuple,
)
# seq is the head's seq + 1, numbered by ``_append`` under the audit advisory lock (follows the chain)
_INSERT_AUDIT = f"INSERT INTO jitsec.audit ({AUDIT_COLUMNS}) VALUES ({_SQL.marks(13)})"
# one constant text for every state filter; binding NULL (no states given) matches every lease
_STATE_FILTER = " AND (%s::text[] IS NULL OR state = ANY(%s::text[]))"
_BEGIN_REVOCATION = _SQL.begin_revocation("= ANY(%s)")
_NEXT_DEADLINE = (
    "SELECT LEAST("
    f"(SELECT MIN(expires_at) FROM jitsec.leases WHERE {REVOCABLE_TEST}),"
    f"(SELECT MIN(next_attempt_at) FROM jitsec.leases WHERE {PENDING_TEST}))"
)

T = TypeVar("T")


def _states(states: Collection[LeaseState] | None) -> list[str] | None:
    return [s.value for s in states] if states else None


class PostgresStore:
    """See ``broker.store.base.Store`` for the contract. ``conninfo`` is a libpq URL or DSN."""

    def __init__(
        self, conninfo: str, audit_key: MacKey | bytes, *, max_idle: int = 8, connect_timeout: int = 10
    ) -> None:
        self._conninfo = conninfo
        self._key = as_mac_key(audit_key)
        self._max_idle = max_idle
        self._connect_timeout = connect_timeout
        self._idle: list[psycopg.Connection] = []
        self._lock = threading.Lock()
        self._reaper_conn: psycopg.Connection | None = None
        self._reaper_guard = threading.Lock()
        self.incidents = SqlIncidentRecords(
            self, IncidentSql(mark="%s", prefix="jitsec.", lock=" FOR UPDATE"), lambda: new_id("inc")
        )

    # plumbing --------------------------------------------------------------------------------------
    def _connect(self) -> psycopg.Connection:
        return psycopg.connect(
            self._conninfo,
            autocommit=True,
            connect_timeout=self._connect_timeout,
            application_name="jitsec-broker-store",
        )

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection]:
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        conn = conn or self._connect()
        try:
            yield conn
        except BaseException:
            conn.close()
            raise
        idle = not conn.closed and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        with self._lock:
            if idle and len(self._idle) < self._max_idle:
                self._idle.append(conn)
                return
        conn.close()

    def _run(self, work: Callable[[psycopg.Connection], T], *, transaction: bool) -> T:
        """Run ``work`` on a pooled connection; once more on a fresh one if the first was dead.

        A pooled connection may have died with a server restart; the retry makes that invisible. Every
        write here is either compare-and-set or guarded by a unique key, so a retried write cannot
        apply twice.
        """
        for attempt in (1, 2):
            try:
                with self._connection() as conn:
                    if not transaction:
                        return work(conn)
                    with conn.transaction():
                        return work(conn)
            except psycopg.OperationalError:
                if attempt == 2:
                    raise
                self._drop_idle()
        raise AssertionError("unreachable")

    def _read(self, query: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        return self._run(lambda conn: conn.execute(query, params).fetchall(), transaction=False)

    def run_write(self, work: Callable[[psycopg.Connection, AuditAppend], T]) -> T:
        """One write transaction for the incident records, its audit records chained inside it."""
        return self._run(lambda conn: work(conn, lambda events: self._append(conn, events)), transaction=True)

    def run_read(self, work: Callable[[psycopg.Connection], T]) -> T:
        return self._run(work, transaction=False)

    def _drop_idle(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _append(self, conn: psycopg.Connection, events: Sequence[AuditEvent]) -> None:
        """Chain and insert ``events`` inside the caller's transaction (serialised by an advisory lock)."""
        if not events:
            return
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (AUDIT_LOCK_KEY,))
        row = conn.execute("SELECT seq, hash FROM jitsec.audit ORDER BY seq DESC LIMIT 1").fetchone()
        rows = _SQL.audit_rows(self._key, (row[0], row[1]) if row else None, events)
        with conn.cursor() as cursor:
            cursor.executemany(_INSERT_AUDIT, rows)

    def migrate(self) -> None:
        def work(conn: psycopg.Connection) -> None:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATE_LOCK_KEY,))
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(SCHEMA)))
            conn.execute("CREATE TABLE IF NOT EXISTS jitsec.schema_version (version integer PRIMARY KEY)")
            current = conn.execute("SELECT COALESCE(MAX(version), 0) FROM jitsec.schema_version").fetchone()
            for version, script in enumerate(MIGRATIONS, start=1):
                if version > (current[0] if current else 0):
                    conn.execute(script)
                    conn.execute("INSERT INTO jitsec.schema_version (version) VALUES (%s)", (version,))

        self._run(work, transaction=True)

    def close(self) -> None:
        with self._reaper_guard:
            if self._reaper_conn is not None:
                self._reaper_conn.close()
                self._reaper_conn = None
        self._drop_idle()

    # tasks -----------------------------------------------------------------------------------------
    def create_task(self, task: Task, event: AuditEvent) -> None:
        def work(conn: psycopg.Connection) -> None:
            conn.execute(_SQL.insert_task, _SQL.task_values(task))
            self._append(conn, [event])

        self._run(work, transaction=True)

    def get_task(self, task_id: str) -> Task | None:
        rows = self._read(_SQL.get_task, (task_id,))
        return _SQL.task(rows[0]) if rows else None

    def redeem_grant(self, task_id: str, now: float, token_lease: Lease, event: AuditEvent) -> bool:
        def work(conn: psycopg.Connection) -> bool:
            changed = conn.execute(_SQL.redeem_grant, (now, task_id)).rowcount
            if not changed:
                return False
            conn.execute(_SQL.insert_lease, _SQL.lease_values(token_lease))
            self._append(conn, [event])
            return True

        return self._run(work, transaction=True)

    def complete_task(self, task_id: str, now: float, event: AuditEvent) -> bool:
        def work(conn: psycopg.Connection) -> bool:
            changed = conn.execute(_SQL.complete_task, (now, task_id)).rowcount
            if changed:
                self._append(conn, [event])
            return bool(changed)

        return self._run(work, transaction=True)

    def open_tasks_of_agent(self, agent: str, now: float) -> list[Task]:
        rows = self._read(_SQL.open_tasks_of_agent, (agent, now))
        return [_SQL.task(r) for r in rows]

    # leases ----------------------------------------------------------------------------------------
    def add_lease(self, lease: Lease, event: AuditEvent) -> None:
        def work(conn: psycopg.Connection) -> None:
            conn.execute(_SQL.insert_lease, _SQL.lease_values(lease))
            self._append(conn, [event])

        self._run(work, transaction=True)

    def get_lease(self, lease_id: str) -> Lease | None:
        rows = self._read(_SQL.get_lease, (lease_id,))
        return _SQL.lease(rows[0]) if rows else None

    def lease_by_fingerprint(self, sha256: str) -> Lease | None:
        rows = self._read(_SQL.lease_by_fingerprint, (sha256.lower(),))
        return _SQL.lease(rows[0]) if rows else None

    def leases_of_task(self, task_id: str, states: Collection[LeaseState] | None = None) -> list[Lease]:
        rows = self._read(_SQL.leases_of_task + _STATE_FILTER, (task_id, _states(states), _states(states)))
        return [_SQL.lease(r) for r in rows]

    def leases_of_agent(self, agent: str, states: Collection[LeaseState] | None = None) -> list[Lease]:
        rows = self._read(_SQL.leases_of_agent + _STATE_FILTER, (agent, _states(states), _states(states)))
        return [_SQL.lease(r) for r in rows]

    def live_leases(self, cursor: str | None, limit: int, now: float) -> Page:
        rows = self._read(_SQL.live_leases, (now, cursor or "", limit + 1))
        leases = tuple(_SQL.lease(r) for r in rows[:limit])
        return Page(leases=leases, next_cursor=leases[-1].lease_id if len(rows) > limit else None)

    def leases_due(self, now: float, limit: int) -> list[Lease]:
        rows = self._read(_SQL.leases_due, (now, limit))
        return [_SQL.lease(r) for r in rows]

    def leases_to_retry(self, now: float, limit: int) -> list[Lease]:
        rows = self._read(_SQL.leases_to_retry, (now, limit))
        return [_SQL.lease(r) for r in rows]

    def reclaim_in_flight(self, now: float) -> int:
        return self._run(lambda conn: conn.execute(_SQL.reclaim_in_flight, (now, now)).rowcount,
                         transaction=True)

    def next_deadline(self) -> float | None:
        rows = self._read(_NEXT_DEADLINE)
        return rows[0][0] if rows else None

    def shorten_expiry(self, lease_id: str, expires_at: float, event: AuditEvent) -> bool:
        def work(conn: psycopg.Connection) -> bool:
            changed = conn.execute(_SQL.shorten_expiry, (expires_at, lease_id, expires_at)).rowcount
            if changed:
                self._append(conn, [event])
            return bool(changed)

        return self._run(work, transaction=True)

    def begin_revocation(self, lease_ids: Sequence[str], reason: str, detail: str, now: float) -> list[Lease]:
        def work(conn: psycopg.Connection) -> list[Lease]:
            rows = conn.execute(
                _BEGIN_REVOCATION, (reason, detail, now, now + IN_FLIGHT_SECONDS, list(lease_ids))
            ).fetchall()
            return [_SQL.lease(r) for r in rows]

        return self._run(work, transaction=True) if lease_ids else []

    def finish_revocation(
        self, updates: Sequence[RevocationUpdate], events: Sequence[AuditEvent]
    ) -> set[str]:
        def work(conn: psycopg.Connection) -> set[str]:
            applied: set[str] = set()
            with conn.cursor() as cursor:
                for statement, rows in _SQL.finish_revocation(updates):
                    cursor.executemany(statement, rows, returning=True)
                    while True:
                        applied.update(row[0] for row in cursor.fetchall())
                        if not cursor.nextset():
                            break
            self._append(conn, applied_events(events, applied))
            return applied

        return self._run(work, transaction=True) if updates else set()

    # audit -----------------------------------------------------------------------------------------
    def append_audit(self, events: Sequence[AuditEvent]) -> None:
        if events:
            self._run(lambda conn: self._append(conn, events), transaction=True)

    def audit_records(self, after_seq: int = 0, limit: int = 1000) -> list[AuditRecord]:
        return [_SQL.audit_record(r) for r in self._read(_SQL.audit_records, (after_seq, limit))]

    def audit_head(self) -> tuple[int, str] | None:
        rows = self._read(_SQL.audit_head, ())
        return (int(rows[0][0]), str(rows[0][1])) if rows else None

    # agents ----------------------------------------------------------------------------------------
    def set_quarantined(self, agent: str, quarantined: bool, event: AuditEvent) -> None:
        def work(conn: psycopg.Connection) -> None:
            if quarantined:
                conn.execute(
                    "INSERT INTO jitsec.quarantine (agent, since) VALUES (%s, %s) "
                    "ON CONFLICT (agent) DO NOTHING",
                    (agent, event.at),
                )
            else:
                conn.execute(_SQL.unquarantine, (agent,))
            self._append(conn, [event])

        self._run(work, transaction=True)

    def is_quarantined(self, agent: str) -> bool:
        return bool(self._read(_SQL.is_quarantined, (agent,)))

    # coordination ----------------------------------------------------------------------------------
    def try_acquire_reaper_lock(self) -> bool:
        """True while this store holds the reaper's advisory lock on a live session.

        The lock is held by a dedicated connection; each call checks that session is still alive (a
        lost session lost the lock too) and otherwise tries to take the lock afresh.
        """
        with self._reaper_guard:
            if self._reaper_conn is not None:
                try:
                    self._reaper_conn.execute("SELECT 1")
                    return True
                except psycopg.Error:
                    self._reaper_conn.close()
                    self._reaper_conn = None
            try:
                conn = self._connect()
            except psycopg.OperationalError:
                return False
            try:
                row = conn.execute("SELECT pg_try_advisory_lock(%s)", (REAPER_LOCK_KEY,)).fetchone()
            except psycopg.Error:
                conn.close()
                return False
            if row and row[0]:
                self._reaper_conn = conn
                return True
            conn.close()
            return False


def open_postgres(url: str, audit_key: MacKey | bytes) -> PostgresStore:
    """``postgresql://user:password@host:port/database`` (any libpq URL or DSN)."""
    if not url.partition("://")[2]:
        raise ValueError("a postgresql store URL needs a host and database: postgresql://user@host/db")
    return PostgresStore(url, audit_key)
