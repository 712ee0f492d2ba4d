"""An on-disk, in-order delivery queue: what makes a sink never lose and never block.

``put`` appends a payload to a SQLite database (WAL, ``synchronous=FULL``: the commit is fsync'd) and
returns; a delivery thread drains the oldest payload first through the sink's ``deliver`` callable,
deleting it only after ``deliver`` returned. A failing receiver is retried with capped exponential
backoff and jitter, so alerts wait and arrive in order when it returns; a restart reopens the same
file and delivers what is left. Delivery is at-least-once: a crash between a receiver accepting a
payload and its deletion here repeats that one payload on restart.

A ``PermanentDeliveryError`` (e.g. HTTP 400: the receiver will never take this payload) moves the
payload to a ``dead`` table, kept on disk and counted, so one bad payload cannot stall the queue.
Payloads are incident JSON: they hold no plaintext secret, so neither does the spool.
"""

from __future__ import annotations

import logging
import random
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from jitsec.kernel.private_files import private_file

log = logging.getLogger(__name__)


class DeliveryError(Exception):
    """The receiver did not take the payload this time; retry later."""


class PermanentDeliveryError(DeliveryError):
    """The receiver will never take this payload; set it aside (dead letter), keep going."""


@dataclass(frozen=True, slots=True)
class Backoff:
    """Capped exponential backoff with full jitter: ``initial * 2**n`` up to ``maximum`` seconds."""

    initial: float = 0.05
    maximum: float = 5.0

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        ceiling = min(self.maximum, self.initial * (2 ** min(attempt, 30)))
        return ceiling / 2 + rand() * ceiling / 2


@dataclass(frozen=True, slots=True)
class SpoolStats:
    """``failing``: the last delivery attempt failed and payloads wait (the receiver is down or
    refusing); ``oldest_queued_at``: UNIX time the oldest waiting payload was queued (None: empty)."""

    pending: int
    delivered: int
    failures: int
    dead: int
    last_error: str | None
    failing: bool = False
    oldest_queued_at: float | None = None


_SCHEMA = """
CREATE TABLE IF NOT EXISTS queue (seq INTEGER PRIMARY KEY AUTOINCREMENT, payload BLOB NOT NULL,
                                  queued_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS dead (seq INTEGER PRIMARY KEY, payload BLOB NOT NULL, queued_at REAL NOT NULL,
                                 reason TEXT NOT NULL);
"""


class Spool:
    """A durable FIFO with one delivery thread. Thread-safe ``put``; ``close`` is idempotent.

    ``deliver(payload)`` runs on the delivery thread only, one payload at a time, oldest first; it
    raises ``DeliveryError`` (or any exception) to have the payload retried after a backoff.
    """

    def __init__(
        self,
        path: Path | str,
        deliver: Callable[[bytes], None],
        *,
        name: str = "spool",
        backoff: Backoff | None = None,
        start: bool = True,
    ) -> None:
        self.path = Path(path)
        self.name = name
        self._deliver = deliver
        self._backoff = backoff or Backoff()
        private_file(self.path)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._stopping = False
        self._closed = False
        self._delivered = 0
        self._failures = 0
        self._last_error: str | None = None
        self._failing = False
        self._final: SpoolStats | None = None  # what was left at close, for the shutdown report
        self._thread = threading.Thread(target=self._run, name=f"spool-{name}", daemon=True)
        if start:
            self._thread.start()

    # -- producer side ---------------------------------------------------------------------------

    def put(self, payload: bytes) -> None:
        """Append durably (fsync'd) and return; never waits on the receiver."""
        with self._lock:
            if self._closed:
                raise RuntimeError(f"spool {self.name} is closed")
            self._db.execute(
                "INSERT INTO queue (payload, queued_at) VALUES (?, ?)", (payload, time.time())
            )
            self._wake.notify_all()

    def stats(self) -> SpoolStats:
        """Counts now; after ``close``, what was left at close (still on disk for the next start)."""
        with self._lock:
            if self._final is not None:
                return self._final
            return self._stats_locked()

    def _stats_locked(self) -> SpoolStats:
        pending, oldest = self._db.execute("SELECT COUNT(*), MIN(queued_at) FROM queue").fetchone()
        dead = self._db.execute("SELECT COUNT(*) FROM dead").fetchone()[0]
        return SpoolStats(pending, self._delivered, self._failures, dead, self._last_error,
                          failing=self._failing and pending > 0,
                          oldest_queued_at=None if oldest is None else float(oldest))

    def wait_empty(self, timeout: float) -> bool:
        """Block until every queued payload was delivered (or set aside), at most ``timeout`` s."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._pending_locked():
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._closed:
                    return False
                self._wake.wait(min(remaining, 0.05))
            return True

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what can be delivered within ``timeout`` seconds, keep the rest on disk, stop."""
        if self._closed:
            return
        if self._thread.is_alive():
            self.wait_empty(timeout)
        with self._lock:
            self._stopping = True
            self._wake.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=max(1.0, self._backoff.maximum))
        with self._lock:
            self._final = self._stats_locked()
            self._closed = True
            self._db.close()

    # -- delivery thread ---------------------------------------------------------------------------

    def _pending_locked(self) -> bool:
        return self._db.execute("SELECT 1 FROM queue LIMIT 1").fetchone() is not None

    def _next(self) -> tuple[int, bytes, float] | None:
        with self._lock:
            while not self._stopping:
                row = self._db.execute(
                    "SELECT seq, payload, queued_at FROM queue ORDER BY seq LIMIT 1"
                ).fetchone()
                if row is not None:
                    return int(row[0]), bytes(row[1]), float(row[2])
                self._wake.wait(0.5)
            return None

    def _run(self) -> None:
        attempt = 0
        while True:
            item = self._next()
            if item is None:
                return
            seq, payload, queued_at = item
            try:
                self._deliver(payload)
            except PermanentDeliveryError as error:
                self._set_aside(seq, payload, queued_at, str(error))
                attempt = 0
                continue
            except Exception as error:  # any failure is a retry: the receiver may come back
                attempt += 1
                with self._lock:
                    self._failures += 1
                    self._failing = True
                    self._last_error = f"{type(error).__name__}: {error}"
                    if attempt == 1 or attempt % 20 == 0:
                        log.warning("sink %s: delivery failed (attempt %d), retrying: %s",
                                    self.name, attempt, self._last_error)
                    self._wake.wait_for(lambda: self._stopping, timeout=self._backoff.delay(attempt))
                    if self._stopping:
                        return
                continue
            attempt = 0
            with self._lock:
                if self._closed:  # closed while delivering: the payload stays queued for next start
                    return
                self._failing = False
                self._db.execute("DELETE FROM queue WHERE seq = ?", (seq,))
                self._delivered += 1
                self._wake.notify_all()

    def _set_aside(self, seq: int, payload: bytes, queued_at: float, reason: str) -> None:
        log.error("sink %s: receiver refused a payload for good, kept in the dead table: %s",
                  self.name, reason)
        with self._lock:
            if self._closed:
                return
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "INSERT INTO dead (seq, payload, queued_at, reason) VALUES (?, ?, ?, ?)",
                (seq, payload, queued_at, reason),
            )
            self._db.execute("DELETE FROM queue WHERE seq = ?", (seq,))
            self._db.execute("COMMIT")
            self._wake.notify_all()
