"""The reaper: revokes every lease at its expiry, retries pending revocations, catches up after a restart.

One thread per broker process; only the process holding the store's reaper lock works, the others
stand by and take over if it dies. It sleeps until the store's next deadline plus ``coalesce_seconds``
(never longer than ``max_sleep_seconds``), so lateness stays well under a second while leases that
expire one after another are revoked a pass-full at a time, not one pass each; on start it sees every
lease that expired while no reaper ran and revokes them at once, in batches.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from jitsec.broker.config import ReaperSettings
from jitsec.broker.revoker import Revoker
from jitsec.broker.store.base import Store

log = logging.getLogger("jitsec.broker.reaper")
STANDBY_FACTOR = 5  # a stand-by process checks for the lock this many sleeps apart


class Reaper:
    def __init__(
        self, store: Store, revoker: Revoker, settings: ReaperSettings,
        clock: Callable[[], float] = time.time, *, housekeeping: Callable[[], object] | None = None,
        passes: Callable[[], object] | None = None,
    ) -> None:
        self._store, self._revoker, self._settings, self._clock = store, revoker, settings, clock
        self._housekeeping = housekeeping  # e.g. the engines' reconciler; runs on the leader's passes
        self._count_pass = passes  # called after each pass that revoked something (a metric)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.is_leader = False

    def run_once(self) -> int:
        """Revoke everything due now (expired leases, retries), batch after batch; returns how many."""
        total = 0
        batch = self._settings.batch_size
        while True:
            done = self._revoker.expire_due(batch) + self._revoker.retry_due(batch)
            total += done
            if done < batch:
                if total and self._count_pass is not None:
                    self._count_pass()
                return total

    def seconds_until_next(self) -> float:
        deadline = self._store.next_deadline()
        ceiling = self._settings.max_sleep_seconds
        if deadline is None:
            return ceiling
        return min(ceiling, max(0.0, deadline - self._clock() + self._settings.coalesce_seconds))

    def start(self) -> None:
        """Start the loop; first, revocations a crashed process left in flight become due at once
        (a completed task's credentials must not keep working for ``IN_FLIGHT_SECONDS``)."""
        if self._thread is not None:
            return
        reclaimed = self._store.reclaim_in_flight(self._clock())
        if reclaimed:
            log.warning("%d revocation(s) left in flight by a previous process are retried now", reclaimed)
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="jitsec-reaper", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Ask for an early pass (e.g. a lease with a very short TTL was just issued)."""
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                self.is_leader = self._store.try_acquire_reaper_lock()
                if self.is_leader:
                    self.run_once()
                    if self._housekeeping is not None:
                        self._housekeeping()
                    wait = self.seconds_until_next()
                else:
                    wait = self._settings.max_sleep_seconds * STANDBY_FACTOR
                failures = 0
            except Exception:  # the store is down or broken: say so, back off, never stop reaping
                failures += 1
                wait = min(30.0, self._settings.max_sleep_seconds * 2**failures)
                log.exception("reaper pass failed (%d in a row); retrying in %.1fs", failures, wait)
            if wait > 0:
                self._wake.wait(wait)
            self._wake.clear()
