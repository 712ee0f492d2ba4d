"""The X.509 engine's own record of what its CA signed and revoked (SQLite in the engine's state dir).

The CRL is rebuilt from it, so after a restart the CRL again lists every revoked certificate that has
not expired; it also keeps each certified key's fingerprint unique (a new key for every certificate)
and tells the reconciler which certificates no lease backs. Thread-safe: one connection behind a lock.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS certificates (
    serial TEXT PRIMARY KEY,           -- hex, lowercase
    lease_id TEXT NOT NULL,
    key_fingerprint TEXT NOT NULL UNIQUE,
    issued_at REAL NOT NULL,
    not_after REAL NOT NULL,
    revoked_at REAL
);
CREATE INDEX IF NOT EXISTS certificates_revoked ON certificates (revoked_at, not_after);
CREATE TABLE IF NOT EXISTS crl_number (id INTEGER PRIMARY KEY CHECK (id = 1), value INTEGER NOT NULL);
INSERT OR IGNORE INTO crl_number VALUES (1, 0);
"""


class KeyReused(Exception):
    """The key of a CSR was certified before: every certificate needs a fresh key."""


@dataclass(frozen=True, slots=True)
class Revoked:
    serial: int
    revoked_at: float


@dataclass(frozen=True, slots=True)
class Unbacked:
    serial: str
    lease_id: str


class Ledger:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # WAL: durable at checkpoints, never corrupt
            self._db.executescript(_SCHEMA)

    def record(self, serial: str, lease_id: str, key_fingerprint: str, issued_at: float,
               not_after: float) -> None:
        """Note a certificate about to be handed out; ``KeyReused`` if its key was certified before."""
        try:
            with self._lock:
                self._db.execute("INSERT INTO certificates VALUES (?, ?, ?, ?, ?, NULL)",
                                 (serial, lease_id, key_fingerprint, issued_at, not_after))
        except sqlite3.IntegrityError:
            raise KeyReused from None

    def forget(self, serial: str) -> None:
        """Remove a certificate that was never handed out (its signing failed after ``record``)."""
        with self._lock:
            self._db.execute("DELETE FROM certificates WHERE serial = ?", (serial,))

    def revoke(self, serial: str, not_after: float, now: float) -> bool:
        """Mark one certificate revoked; False when it already was. A serial the ledger does not know
        (its state was lost) is added, so the CRL still lists it."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute("SELECT revoked_at FROM certificates WHERE serial = ?",
                                       (serial,)).fetchone()
                if row is not None and row[0] is not None:
                    self._db.execute("ROLLBACK")
                    return False
                if row is None:
                    self._db.execute("INSERT INTO certificates VALUES (?, '', ?, ?, ?, ?)",
                                     (serial, "unknown:" + serial, now, not_after, now))
                else:
                    self._db.execute("UPDATE certificates SET revoked_at = ? WHERE serial = ?", (now, serial))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return True

    def revoked_unexpired(self, now: float) -> list[Revoked]:
        with self._lock:
            rows = self._db.execute(
                "SELECT serial, revoked_at FROM certificates WHERE revoked_at IS NOT NULL AND not_after > ?",
                (now,),
            ).fetchall()
        return [Revoked(serial=int(serial, 16), revoked_at=float(at)) for serial, at in rows]

    def next_crl_number(self) -> int:
        with self._lock:
            row = self._db.execute("UPDATE crl_number SET value = value + 1 RETURNING value").fetchone()
        return int(row[0])

    def unbacked(self, live_serials: Collection[str], issued_before: float, now: float) -> list[Unbacked]:
        """Live certificates (neither revoked nor expired) older than ``issued_before`` whose serial is
        not among ``live_serials``: issued, then lost by a crash before the store kept their lease."""
        with self._lock:
            rows = self._db.execute(
                "SELECT serial, lease_id FROM certificates WHERE revoked_at IS NULL AND not_after > ? "
                "AND issued_at < ?",
                (now, issued_before),
            ).fetchall()
        return [Unbacked(serial=s, lease_id=lease) for s, lease in rows if s not in live_serials]

    def prune(self, expired_before: float) -> int:
        """Drop certificates expired before ``expired_before``: nothing can use or list them again."""
        with self._lock:
            cursor = self._db.execute("DELETE FROM certificates WHERE not_after < ?", (expired_before,))
        return cursor.rowcount

    def close(self) -> None:
        with self._lock:
            self._db.close()
