# ruff: noqa: S608  (SQL text is built from constant column lists and "?" marks only; values are bound)
"""The embedded store: one SQLite file in WAL mode.

One connection per store object guarded by a lock (SQLite serialises writers anyway); several broker
processes may open the same file (``BEGIN IMMEDIATE`` serialises their writes and the audit chain).
The reaper lock is an exclusive ``flock`` on ``<file>.reaper.lock``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

from jitsec.broker.custody.base import MacKey, as_mac_key
from jitsec.broker.incidents import schema as incident_schema
from jitsec.broker.incidents.records import AuditAppend, IncidentSql, SqlIncidentRecords
from jitsec.broker.lifecycle import RevocationUpdate, applied_events
from jitsec.broker.model import AuditEvent, AuditRecord, Lease, LeaseState, Page, Task, new_id
from jitsec.broker.store.base import IN_FLIGHT_SECONDS
from jitsec.broker.store.sql_common import AUDIT_COLUMNS, PENDING_TEST, REVOCABLE_TEST, SqlDialect

from jitsec.kernel.private_files import private_file

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE tasks (
        task_id TEXT PRIMARY KEY, agent TEXT NOT NULL, name TEXT NOT NULL, scopes TEXT NOT NULL,
        created_at REAL NOT NULL, expires_at REAL NOT NULL, grant_sha256 TEXT NOT NULL UNIQUE,
        grant_expires_at REAL NOT NULL, created_by TEXT NOT NULL, redeemed_at REAL, completed_at REAL
    );
    CREATE INDEX tasks_by_agent ON tasks (agent);
    CREATE TABLE leases (
        lease_id TEXT PRIMARY KEY, task_id TEXT NOT NULL, agent TEXT NOT NULL, engine TEXT NOT NULL,
        scopes TEXT NOT NULL, issued_at REAL NOT NULL, expires_at REAL NOT NULL,
        fingerprint TEXT NOT NULL UNIQUE, handle TEXT NOT NULL, state TEXT NOT NULL,
        revoke_reason TEXT, revoke_detail TEXT, revoke_requested_at REAL, revoked_at REAL,
        attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at REAL, last_error TEXT,
        rotated_from TEXT, username TEXT
    );
    CREATE INDEX leases_by_task ON leases (task_id);
    CREATE INDEX leases_by_agent ON leases (agent);
    CREATE INDEX leases_active_expiry ON leases (expires_at) WHERE state = 'active';
    CREATE INDEX leases_revoking_next ON leases (next_attempt_at) WHERE state = 'revoking';
    CREATE TABLE audit (
        seq INTEGER PRIMARY KEY, at REAL NOT NULL, kind TEXT NOT NULL, principal TEXT NOT NULL,
        agent TEXT NOT NULL, task_id TEXT NOT NULL, lease_id TEXT NOT NULL, engine TEXT NOT NULL,
        scopes TEXT NOT NULL, resource TEXT NOT NULL, detail TEXT NOT NULL,
        prev_hash TEXT NOT NULL, hash TEXT NOT NULL
    );
    CREATE TABLE quarantine (agent TEXT PRIMARY KEY, since REAL NOT NULL);
    """,
    incident_schema.SQLITE,
)
T = TypeVar("T")

_SQL = SqlDialect(
    mark="?",
    prefix="",
    encode_scopes=lambda scopes: json.dumps(list(scopes)),  # SQLite has no arrays: scopes are JSON text
    decode_scopes=lambda value: tuple(json.loads(value)),
)
# seq is the head's seq + 1 (writers are serialised by BEGIN IMMEDIATE, so it follows the chain)
_INSERT_AUDIT = f"INSERT INTO audit ({AUDIT_COLUMNS}) VALUES ({_SQL.marks(13)})"
_NEXT_DEADLINE = (
    "SELECT MIN(t) FROM ("
    f"SELECT MIN(expires_at) AS t FROM leases WHERE {REVOCABLE_TEST} UNION ALL "
    f"SELECT MIN(next_attempt_at) FROM leases WHERE {PENDING_TEST})"
)


@dataclass(slots=True)
class _Work:
    """One writer's part of a group commit."""

    work: Callable[[sqlite3.Connection], object]
    done: bool = False
    result: object = None
    error: BaseException | None = None


def _states_clause(states: Collection[LeaseState] | None) -> tuple[str, list[str]]:
    if not states:
        return "", []
    values = [s.value for s in states]
    return f" AND state IN ({','.join('?' * len(values))})", values


class SQLiteStore:
    """See ``broker.store.base.Store`` for the contract."""

    inline_reads = True  # local file, sub-millisecond calls: the API may call it on the event loop

    def __init__(self, path: str | Path, audit_key: MacKey | bytes) -> None:
        self.path = Path(path)
        self._key = as_mac_key(audit_key)
        self._lock = threading.Lock()
        self._reaper_file: IO[bytes] | None = None
        self._queue_lock = threading.Lock()
        self._queue: list[_Work] = []
        private_file(self.path)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=30000")
        with contextlib.suppress(OSError):
            os.chmod(self.path, 0o600)
        self.incidents = SqlIncidentRecords(self, IncidentSql(mark="?", prefix="", lock=""),
                                            lambda: new_id("inc"))

    # plumbing --------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _grouped(self, work: Callable[[sqlite3.Connection], object]) -> object:
        """Group commit: run ``work`` in a transaction shared with every writer queued meanwhile.

        Whoever holds the connection lock drains the whole queue into one transaction (one WAL commit
        for many leases), each item inside its own savepoint so one failure fails only its caller.
        """
        item = _Work(work)
        with self._queue_lock:
            self._queue.append(item)
        while not item.done:
            with self._lock:
                if item.done:
                    break
                with self._queue_lock:
                    batch, self._queue = self._queue, []
                self._run_batch(batch)
        if item.error is not None:
            raise item.error
        return item.result

    def _run_batch(self, batch: list[_Work]) -> None:
        db = self._db
        if len(batch) == 1:  # alone: no savepoint needed, the transaction is the item's
            self._run_alone(batch[0])
            return
        try:
            db.execute("BEGIN IMMEDIATE")
            for item in batch:
                db.execute("SAVEPOINT item")
                try:
                    item.result = item.work(db)
                except Exception as error:
                    db.execute("ROLLBACK TO item")
                    item.error = error
                db.execute("RELEASE item")
            db.execute("COMMIT")
        except BaseException as error:
            if db.in_transaction:
                db.execute("ROLLBACK")
            for item in batch:
                item.error = item.error or error
            raise
        finally:
            for item in batch:
                item.done = True

    def _run_alone(self, item: _Work) -> None:
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                item.result = item.work(db)
            except Exception as error:
                item.error = error
                db.execute("ROLLBACK")
                return
            db.execute("COMMIT")
        except BaseException as error:
            if db.in_transaction:
                db.execute("ROLLBACK")
            item.error = item.error or error
            raise
        finally:
            item.done = True

    def _read(self, sql: str, params: Sequence[object] = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def run_write(self, work: Callable[[Any, AuditAppend], T]) -> T:
        """One write transaction (group-committed with concurrent writers) for the incident records."""
        def grouped(db: sqlite3.Connection) -> T:
            return work(db, lambda events: self._append(db, events))

        return self._grouped(grouped)  # type: ignore[return-value]

    def run_read(self, work: Callable[[Any], T]) -> T:
        with self._lock:
            return work(self._db)

    def _append(self, db: sqlite3.Connection, events: Sequence[AuditEvent]) -> None:
        if not events:
            return
        row = db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        db.executemany(_INSERT_AUDIT, _SQL.audit_rows(self._key, (row[0], row[1]) if row else None, events))

    def migrate(self) -> None:
        with self._write() as db:
            db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = db.execute("SELECT MAX(version) FROM schema_version").fetchone()
            current = row[0] or 0
            for version, script in enumerate(MIGRATIONS, start=1):
                if version > current:
                    for statement in filter(str.strip, script.split(";")):
                        db.execute(statement)
                    db.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))

    def close(self) -> None:
        with self._lock:
            if self._reaper_file is not None:
                self._reaper_file.close()
                self._reaper_file = None
            self._db.close()

    # tasks -----------------------------------------------------------------------------------------
    def create_task(self, task: Task, event: AuditEvent) -> None:
        with self._write() as db:
            db.execute(_SQL.insert_task, _SQL.task_values(task))
            self._append(db, [event])

    def get_task(self, task_id: str) -> Task | None:
        rows = self._read(_SQL.get_task, (task_id,))
        return _SQL.task(rows[0]) if rows else None

    def redeem_grant(self, task_id: str, now: float, token_lease: Lease, event: AuditEvent) -> bool:
        with self._write() as db:
            changed = db.execute(_SQL.redeem_grant, (now, task_id)).rowcount
            if not changed:
                return False
            db.execute(_SQL.insert_lease, _SQL.lease_values(token_lease))
            self._append(db, [event])
            return True

    def complete_task(self, task_id: str, now: float, event: AuditEvent) -> bool:
        with self._write() as db:
            changed = db.execute(_SQL.complete_task, (now, task_id)).rowcount
            if changed:
                self._append(db, [event])
            return bool(changed)

    def open_tasks_of_agent(self, agent: str, now: float) -> list[Task]:
        rows = self._read(_SQL.open_tasks_of_agent, (agent, now))
        return [_SQL.task(r) for r in rows]

    # leases ----------------------------------------------------------------------------------------
    def add_lease(self, lease: Lease, event: AuditEvent) -> None:
        def work(db: sqlite3.Connection) -> None:
            db.execute(_SQL.insert_lease, _SQL.lease_values(lease))
            self._append(db, [event])

        self._grouped(work)

    def get_lease(self, lease_id: str) -> Lease | None:
        rows = self._read(_SQL.get_lease, (lease_id,))
        return _SQL.lease(rows[0]) if rows else None

    def lease_by_fingerprint(self, sha256: str) -> Lease | None:
        rows = self._read(_SQL.lease_by_fingerprint, (sha256.lower(),))
        return _SQL.lease(rows[0]) if rows else None

    def leases_of_task(self, task_id: str, states: Collection[LeaseState] | None = None) -> list[Lease]:
        clause, values = _states_clause(states)
        rows = self._read(_SQL.leases_of_task + clause, (task_id, *values))
        return [_SQL.lease(r) for r in rows]

    def leases_of_agent(self, agent: str, states: Collection[LeaseState] | None = None) -> list[Lease]:
        clause, values = _states_clause(states)
        rows = self._read(_SQL.leases_of_agent + clause, (agent, *values))
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
        with self._write() as db:
            return db.execute(_SQL.reclaim_in_flight, (now, now)).rowcount

    def next_deadline(self) -> float | None:
        rows = self._read(_NEXT_DEADLINE)
        return rows[0][0] if rows else None

    def shorten_expiry(self, lease_id: str, expires_at: float, event: AuditEvent) -> bool:
        with self._write() as db:
            changed = db.execute(_SQL.shorten_expiry, (expires_at, lease_id, expires_at)).rowcount
            if changed:
                self._append(db, [event])
            return bool(changed)

    def begin_revocation(self, lease_ids: Sequence[str], reason: str, detail: str, now: float) -> list[Lease]:
        moved: list[Lease] = []
        with self._write() as db:
            for start in range(0, len(lease_ids), 500):
                batch = list(lease_ids[start : start + 500])
                rows = db.execute(
                    _SQL.begin_revocation(f"IN ({_SQL.marks(len(batch))})"),
                    (reason, detail, now, now + IN_FLIGHT_SECONDS, *batch),
                ).fetchall()
                moved.extend(_SQL.lease(r) for r in rows)
        return moved

    def finish_revocation(
        self, updates: Sequence[RevocationUpdate], events: Sequence[AuditEvent]
    ) -> set[str]:
        with self._write() as db:
            applied = {
                row[0]
                for statement, rows in _SQL.finish_revocation(updates)
                for values in rows
                for row in db.execute(statement, values).fetchall()
            }
            self._append(db, applied_events(events, applied))
        return applied

    # audit -----------------------------------------------------------------------------------------
    def append_audit(self, events: Sequence[AuditEvent]) -> None:
        self._grouped(lambda db: self._append(db, events))

    def audit_records(self, after_seq: int = 0, limit: int = 1000) -> list[AuditRecord]:
        return [_SQL.audit_record(r) for r in self._read(_SQL.audit_records, (after_seq, limit))]

    def audit_head(self) -> tuple[int, str] | None:
        rows = self._read(_SQL.audit_head, ())
        return (int(rows[0][0]), str(rows[0][1])) if rows else None

    # agents ----------------------------------------------------------------------------------------
    def set_quarantined(self, agent: str, quarantined: bool, event: AuditEvent) -> None:
        with self._write() as db:
            if quarantined:
                db.execute("INSERT OR IGNORE INTO quarantine (agent, since) VALUES (?, ?)", (agent, event.at))
            else:
                db.execute(_SQL.unquarantine, (agent,))
            self._append(db, [event])

    def is_quarantined(self, agent: str) -> bool:
        return bool(self._read(_SQL.is_quarantined, (agent,)))

    # coordination ----------------------------------------------------------------------------------
    def try_acquire_reaper_lock(self) -> bool:
        with self._lock:
            if self._reaper_file is not None:
                return True
            handle = open(f"{self.path}.reaper.lock", "ab")  # noqa: SIM115 - held open while we reap
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                return False
            self._reaper_file = handle
            return True


def open_sqlite(url: str, audit_key: MacKey | bytes) -> SQLiteStore:
    """``sqlite:///abs/path.db`` (absolute) or ``sqlite://relative.db``."""
    path = url.removeprefix("sqlite://")
    if path.startswith("//"):
        path = path[1:]
    if not path:
        raise ValueError("a sqlite store URL needs a file path: sqlite:///var/lib/jitsec/broker.db")
    return SQLiteStore(path, audit_key)
