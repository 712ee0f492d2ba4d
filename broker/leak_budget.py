"""How many leases one principal's leak reports may revoke in a window of time.

A scanner key is the most widely spread key of a deployment (hooks on laptops, daemons on log hosts).
Proof of possession already stops it from revoking what it never saw; the budget bounds what a
hostile reporter that did see many secrets (or a runaway scanner) can kill in one burst, and makes
the burst loud. Counted per broker process, in memory: with several workers each has its own budget.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


class RevocationBudget:
    """A sliding window per principal: ``take`` says whether one more revocation fits."""

    def __init__(self, limit: int, window_seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """``limit`` 0 means unlimited."""
        self.limit, self.window_seconds = limit, window_seconds
        self._clock = clock
        self._spent: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def take(self, principal: str, count: int = 1) -> bool:
        """Record ``count`` revocations for ``principal`` if they fit; False (nothing recorded) if not."""
        if self.limit <= 0:
            return True
        with self._lock:
            spent = self._window(principal)
            if len(spent) + count > self.limit:
                return False
            spent.extend([self._clock()] * count)
            return True

    def charge(self, principal: str, count: int) -> None:
        """Record revocations already made (a leak widened to a task or an agent), fitting or not."""
        if self.limit > 0 and count > 0:
            with self._lock:
                self._window(principal).extend([self._clock()] * count)

    def spent(self, principal: str) -> int:
        with self._lock:
            return len(self._window(principal))

    def _window(self, principal: str) -> deque[float]:
        spent = self._spent.setdefault(principal, deque())
        horizon = self._clock() - self.window_seconds
        while spent and spent[0] <= horizon:
            spent.popleft()
        return spent
