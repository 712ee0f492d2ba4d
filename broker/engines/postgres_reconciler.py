"""The reconciler: drops engine-side credentials (PostgreSQL roles) that no live lease backs.

Orphans appear when a broker crashes between creating a role and storing its lease, or when someone
restores an old database. The reconciler asks the store for the handles of live leases of each
engine that can reconcile (``broker.engines.base.Reconciling``) and lets the engine drop the rest.
It runs at start and then every ``interval_seconds``, from the process holding the reaper lock only
(one reconciler per store, as with the reaper). Engines spare very young credentials themselves
(their lease may be between issue and store).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping

from jitsec.broker.engines.base import Engine, Reconciling
from jitsec.broker.errors import TransientEngineError
from jitsec.broker.store.base import Store

log = logging.getLogger("jitsec.broker.reconciler")
PAGE_SIZE = 1000


class Reconciler:
    """Not thread-safe by itself: call ``tick`` from one thread (the reaper's)."""

    def __init__(self, store: Store, engines: Mapping[str, Engine], *, interval_seconds: float = 300.0,
                 clock: Callable[[], float] = time.time) -> None:
        if interval_seconds <= 0:
            raise ValueError("interval_seconds must be positive")
        self._store, self._engines, self._interval, self._clock = store, engines, interval_seconds, clock
        self._next_run = -math.inf  # at start: at once

    def tick(self) -> dict[str, int] | None:
        """Run when due and this process holds the reaper lock; how many were removed, per engine."""
        now = self._clock()
        if now < self._next_run or not self._store.try_acquire_reaper_lock():
            return None
        self._next_run = now + self._interval
        return self.run_once()

    def run_once(self) -> dict[str, int]:
        """Reconcile every reconciling engine now; an engine that is down is retried next interval."""
        removed: dict[str, int] = {}
        for name, engine in self._engines.items():
            if not isinstance(engine, Reconciling):
                continue
            try:
                removed[name] = engine.reconcile(self.live_handles(name))
            except TransientEngineError as error:
                log.warning("reconciling engine %s failed, will retry next interval: %s", name, error)
                continue
            except Exception as error:  # never let housekeeping disturb the reaper's own work
                log.error("reconciling engine %s failed: %s: %s", name, type(error).__name__, error)
                continue
            if removed[name]:
                log.warning("reconciler dropped %d orphaned credential(s) of engine %s", removed[name], name)
        return removed

    def live_handles(self, engine: str) -> set[str]:
        """Handles of the engine's active, unexpired leases (expired ones are the reaper's anyway)."""
        handles: set[str] = set()
        cursor: str | None = None
        now = self._clock()
        while True:
            page = self._store.live_leases(cursor, PAGE_SIZE, now)
            handles.update(lease.handle for lease in page.leases if lease.engine == engine and lease.handle)
            if page.next_cursor is None:
                return handles
            cursor = page.next_cursor
