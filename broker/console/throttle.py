"""Failed sign-ins, counted per client address in a sliding window, so keys cannot be guessed online.

After ``max_failures`` failures within ``window_seconds`` an address is refused (429) until its oldest
counted failure leaves the window; a success does not clear the count (a guesser holding one valid
key must not reset it). The table is bounded: beyond ``max_addresses`` the address seen longest ago is
forgotten. Thread-safe.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    max_failures: int = 5
    window_seconds: float = 300.0
    max_addresses: int = 10_000


class SignInThrottle:
    def __init__(self, policy: ThrottlePolicy | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy or ThrottlePolicy()
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def _recent(self, address: str, now: float) -> deque[float]:
        times = self._failures.get(address)
        if times is None:
            return deque()
        while times and now - times[0] >= self.policy.window_seconds:
            times.popleft()
        return times

    def retry_after(self, address: str) -> float:
        """Seconds until ``address`` may try again; 0 when it may now."""
        now = self._clock()
        with self._lock:
            times = self._recent(address, now)
            if len(times) < self.policy.max_failures:
                return 0.0
            return max(0.0, self.policy.window_seconds - (now - times[0]))

    def failed(self, address: str) -> None:
        now = self._clock()
        with self._lock:
            times = self._recent(address, now)
            times.append(now)
            self._failures[address] = times
            self._failures.move_to_end(address)
            while len(self._failures) > self.policy.max_addresses:
                self._failures.popitem(last=False)
