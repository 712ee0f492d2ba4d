"""What a revocation reports, and when it is tried again.

The moves of a lease through revocation (active → revoking → revoked | failed) are ``broker.lifecycle``'s;
this module holds the outcome a caller sees (``RevocationStatus``) and the retry schedule (``RetryPolicy``).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum


class RevocationStatus(Enum):
    """What ``BrokerService.revoke_lease`` reports."""

    REVOKED = "revoked"  # it was live and the engine confirmed revocation now
    ALREADY_REVOKED = "already_revoked"  # it was already revoked or expired (idempotent)
    RETRYING = "retrying"  # in progress: another caller's attempt is in flight, or a retry is scheduled
    FAILED = "failed"  # terminal failure: alerted; the credential may still work until its expiry


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter: attempt n waits uniform(0.5, 1) x min(cap, base x 2^(n-1)).

    ``max_attempts = 0`` (the default) never gives up: a credential that may still work is retried
    until the engine answers, alerting after ``alert_after_attempts`` and every ``alert_every_attempts``
    after that, so an outage is loud but a long one never turns into a forgotten live credential.
    """

    base_seconds: float = 0.5
    cap_seconds: float = 60.0
    max_attempts: int = 0
    alert_after_attempts: int = 3
    alert_every_attempts: int = 10

    def delay(self, attempts: int, rand: Callable[[], float] = random.random) -> float:
        ceiling = min(self.cap_seconds, self.base_seconds * 2 ** max(0, attempts - 1))
        return ceiling * (0.5 + 0.5 * rand())

    def gives_up_after(self, attempts: int) -> bool:
        return 0 < self.max_attempts <= attempts

    def alerts_while_waiting(self, attempts: int) -> bool:
        """Whether a retry after ``attempts`` failed attempts should raise a "still revoking" alert."""
        past = attempts - self.alert_after_attempts
        return past >= 0 and past % self.alert_every_attempts == 0
