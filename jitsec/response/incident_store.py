"""The incident book on disk: one SQLite row per secret, so a restarted scanner continues its incidents.

Without it a restarted ``jitsec watch`` opens a new incident (new id, count from 1) for every secret
it already alerted on, and a tail re-reading its last lines or a Kafka consumer re-reading uncommitted
records turns into duplicate alerts for an old leak. ``IncidentBook`` keeps owning the logic
(counting, merging, re-send rules, eviction); this module only loads and saves its entries.

What a row holds is exactly what the sinks already emit (``INCIDENT.to_json``: keyed fingerprint,
redacted preview, rule, locations, counts, times, action, lease id...) plus three bookkeeping
numbers: when the incident was last sent, whether an update is waiting to be sent, and when it was
last seen (for least-recently-seen eviction). Never a secret, never an unkeyed hash of one. The
``sightings`` table keeps the book's recent sighting keys (64-bit hashes of fingerprint, location and
masked line), so a line read again after a restart is not counted twice.

Writes are write-behind: the book hands over its changed entries in one transaction per ``save``
(on the responder's timer tick, after a chunk that sent an alert, and on close), never one write per
sighting. WAL with ``synchronous=NORMAL``: a committed save survives the process being killed; a
power loss may lose the last few commits.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from jitsec.kernel.private_files import private_file
from jitsec.kernel.records import Incident
from jitsec.kernel.schemas import INCIDENT

log = logging.getLogger(__name__)

FILE_NAME = "incidents.sqlite"
SCHEMA_VERSION = "1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS incidents (
    fingerprint TEXT PRIMARY KEY,
    record TEXT NOT NULL,
    sent_at REAL NOT NULL,
    unsent INTEGER NOT NULL,
    touched REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS incidents_touched ON incidents (touched);
CREATE TABLE IF NOT EXISTS sightings (seq INTEGER PRIMARY KEY AUTOINCREMENT, key INTEGER NOT NULL UNIQUE);
"""


class IncidentStoreError(OSError):
    """The incident database cannot be opened or written (permissions, a directory in the way, locked)."""


@dataclass(frozen=True, slots=True)
class StoredIncident:
    """One book entry as saved: the incident as sinks see it, plus the book's re-send bookkeeping."""

    incident: Incident
    sent_at: float  # UNIX time the last version was handed to the sinks
    unsent: bool  # a deferred update (counts) not sent yet: the next ``due()`` sends it
    touched: float  # UNIX time of the last sighting, orders least-recently-seen eviction


@dataclass(frozen=True, slots=True)
class StoreStats:
    path: Path
    loaded: int  # incidents read at start
    skipped: int  # rows that could not be read back (dropped)
    saves: int
    errors: int  # failed saves (the book keeps the changes and retries on the next save)
    quarantined: Path | None  # where an unreadable database was moved at start, if one was
    last_error: str | None


class IncidentStore:
    """Thread-safe; ``save`` calls are serialised. Opening quarantines a corrupt file and starts fresh.

    A file that is not a SQLite database (or a damaged one, or one written by an incompatible schema)
    is renamed to ``<name>.corrupt-<unix time>``, logged, and counted in ``stats().quarantined``: the
    scanner keeps alerting (with new incident ids) rather than refusing to start. A file that cannot
    be opened at all (permissions, a directory in the way) raises ``IncidentStoreError`` naming it.
    """

    def __init__(self, path: Path | str, *, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self._clock = clock
        self._lock = threading.Lock()
        self._loaded = self._skipped = self._saves = self._errors = 0
        self._quarantined: Path | None = None
        self._last_error: str | None = None
        try:
            private_file(self.path)
        except OSError as error:
            raise IncidentStoreError(f"cannot open the incident store {self.path}: "
                                     f"{error.strerror or error}") from None
        self._db = self._open()

    # -- opening -------------------------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        try:
            return self._connect()
        except sqlite3.OperationalError as error:  # cannot open/lock: an operator must look
            raise IncidentStoreError(f"cannot open the incident store {self.path}: {error}") from None
        except (sqlite3.DatabaseError, _IncompatibleSchema) as error:
            self._quarantine(error)
            try:
                return self._connect()
            except sqlite3.DatabaseError as again:
                raise IncidentStoreError(f"cannot create the incident store {self.path}: {again}") from None

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10.0)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
            row = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            if row is None:
                db.execute("INSERT INTO meta (key, value) VALUES ('schema', ?)", (SCHEMA_VERSION,))
            elif row[0] != SCHEMA_VERSION:
                raise _IncompatibleSchema(f"schema {row[0]!r}, this version reads {SCHEMA_VERSION!r}")
            ok = db.execute("PRAGMA quick_check").fetchone()
            if ok is None or ok[0] != "ok":
                raise sqlite3.DatabaseError(f"integrity check failed: {ok[0] if ok else 'no answer'}")
        except BaseException:
            db.close()
            raise
        return db

    def _quarantine(self, error: Exception) -> None:
        aside = self.path.with_name(f"{self.path.name}.corrupt-{int(self._clock())}")
        try:
            self.path.replace(aside)
            for suffix in ("-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        except OSError as move_error:
            raise IncidentStoreError(f"the incident store {self.path} is unreadable ({error}) and cannot be "
                                     f"moved aside: {move_error.strerror or move_error}") from None
        self._quarantined = aside
        self._last_error = f"{type(error).__name__}: {error}"
        log.error("incident store %s is unreadable (%s): moved to %s, starting a fresh book; incidents "
                  "seen before get new ids", self.path, error, aside)

    # -- reading and writing ---------------------------------------------------------------------------

    def load(self, limit: int) -> list[StoredIncident]:
        """The ``limit`` most recently seen incidents, least recently seen first (the book's order).
        Older rows beyond ``limit`` and rows that cannot be read back are deleted."""
        with self._lock:
            rows = self._db.execute(
                "SELECT fingerprint, record, sent_at, unsent, touched FROM incidents "
                "ORDER BY touched DESC, rowid DESC").fetchall()
            kept: list[StoredIncident] = []
            drop: list[str] = []
            for fingerprint, record, sent_at, unsent, touched in rows:
                if len(kept) >= limit:
                    drop.append(fingerprint)
                    continue
                try:
                    incident = INCIDENT.from_json(record)
                    if incident.fingerprint != fingerprint:
                        raise ValueError("fingerprint column and record disagree")
                    kept.append(StoredIncident(incident, float(sent_at), bool(unsent), float(touched)))
                except (ValueError, TypeError) as error:
                    self._skipped += 1
                    self._last_error = f"unreadable row dropped: {error}"
                    log.warning("incident store %s: dropping an unreadable row (%s)", self.path, error)
                    drop.append(fingerprint)
            if drop:
                self._write([], drop)
            kept.reverse()
            self._loaded = len(kept)
            return kept

    def load_sightings(self, limit: int) -> list[int]:
        """The ``limit`` most recent sighting keys, oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT key FROM sightings ORDER BY seq DESC LIMIT ?",
                                    (limit,)).fetchall()
        return [int(row[0]) for row in reversed(rows)]

    def save(self, rows: Iterable[StoredIncident], forget: Iterable[str] = (), sightings: Iterable[int] = (),
             *, keep_sightings: int | None = None) -> None:
        """Delete ``forget``, upsert ``rows`` and add ``sightings`` (keeping the newest
        ``keep_sightings``), in one transaction. Raises ``IncidentStoreError`` (nothing written) when
        the database refuses; the caller keeps its changes for the next save."""
        rows, forget, keys = list(rows), list(forget), list(sightings)
        if not rows and not forget and not keys:
            return
        with self._lock:
            try:
                self._write(rows, forget, keys, keep_sightings)
            except sqlite3.Error as error:
                self._errors += 1
                self._last_error = f"{type(error).__name__}: {error}"
                raise IncidentStoreError(f"cannot save incidents to {self.path}: {error}") from None
            self._saves += 1

    def _write(self, rows: list[StoredIncident], forget: list[str], keys: list[int] | None = None,
               keep_sightings: int | None = None) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany("DELETE FROM incidents WHERE fingerprint = ?", [(fp,) for fp in forget])
            db.executemany(
                "INSERT OR REPLACE INTO incidents (fingerprint, record, sent_at, unsent, touched) "
                "VALUES (?, ?, ?, ?, ?)",
                [(r.incident.fingerprint, INCIDENT.to_json(r.incident), r.sent_at, int(r.unsent), r.touched)
                 for r in rows])
            if keys:
                db.executemany("INSERT OR IGNORE INTO sightings (key) VALUES (?)", [(k,) for k in keys])
                if keep_sightings is not None:
                    db.execute("DELETE FROM sightings WHERE seq <= (SELECT MAX(seq) FROM sightings) - ?",
                               (keep_sightings,))
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM incidents").fetchone()[0])

    def stats(self) -> StoreStats:
        with self._lock:
            return StoreStats(self.path, self._loaded, self._skipped, self._saves, self._errors,
                              self._quarantined, self._last_error)

    def close(self) -> None:
        with self._lock:
            self._db.close()


class _IncompatibleSchema(Exception):
    """The file was written by a jitsec with another incident schema."""
