"""Drives leases through revocation: asks the engine, persists the outcome, retries, alerts.

Used by the service (task completion, explicit revocation, rotation, quarantine, leaks) and by the
reaper (expiry, retries). Every lease it touches ends ``revoked``, or ``revoking`` with a scheduled
retry, or ``failed`` with an alert: never silently dropped. It moves leases only through
``broker.lifecycle.LeaseMachine`` (begin, then one outcome per attempt).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from jitsec.broker.engines.base import Engine, RevokeOutcome
from jitsec.broker.errors import TransientEngineError
from jitsec.broker.lifecycle import LeaseMachine, RevocationUpdate, Step
from jitsec.broker.metrics import BrokerMetrics
from jitsec.broker.model import AuditEvent, AuditKind, Lease
from jitsec.broker.revocation import RetryPolicy, RevocationStatus
from jitsec.broker.store.base import Store

log = logging.getLogger("jitsec.broker.revoker")
alert_log = logging.getLogger("jitsec.broker.alerts")

EXPIRED = "expired"
MAX_ERROR_CHARS = 300

Alert = Callable[[Lease, str], None]


def log_alert(lease: Lease, message: str) -> None:
    """The default alert: an ERROR record on ``jitsec.broker.alerts`` (wire a handler to page someone)."""
    alert_log.error(
        "revocation FAILED for lease %s (agent %s, task %s, engine %s): %s",
        lease.lease_id,
        lease.agent,
        lease.task_id,
        lease.engine,
        message,
    )


@dataclass(frozen=True, slots=True)
class RevocationResult:
    lease: Lease
    status: RevocationStatus


class Revoker:
    def __init__(
        self,
        store: Store,
        engines: Mapping[str, Engine],
        retry: RetryPolicy,
        *,
        clock: Callable[[], float] = time.time,
        metrics: BrokerMetrics | None = None,
        alert: Alert = log_alert,
        rand: Callable[[], float] = random.random,
        leases: LeaseMachine | None = None,
    ) -> None:
        self._store, self._engines, self._retry = store, engines, retry
        self._clock, self._metrics, self._alert, self._rand = clock, metrics, alert, rand
        self._leases = leases or LeaseMachine(store)

    def revoke_ids(
        self, lease_ids: Sequence[str], reason: str, detail: str = "", principal: str = ""
    ) -> list[RevocationResult]:
        """Begin revoking the active leases among ``lease_ids`` and attempt each once now."""
        if not lease_ids:
            return []
        started = self._leases.begin(lease_ids, reason, detail, self._clock())
        return self.attempt(started, principal)

    def expire_due(self, limit: int) -> int:
        """Revoke active leases past their expiry (the reaper's main job); returns how many."""
        due = self._store.leases_due(self._clock(), limit)
        if not due:
            return 0
        started = self._leases.begin([lease.lease_id for lease in due], EXPIRED, "", self._clock())
        self.attempt(started, "reaper")
        return len(started)

    def retry_due(self, limit: int) -> int:
        """Attempt again the leases in ``revoking`` whose retry time has come (or that a crash left)."""
        due = self._store.leases_to_retry(self._clock(), limit)
        if due:
            self.attempt(due, "reaper")
        return len(due)

    def attempt(self, leases: Sequence[Lease], principal: str) -> list[RevocationResult]:
        """One engine attempt per lease (all in ``revoking``), persisted in one transaction. Returns the
        results of the attempts that applied; a lease another caller finished meanwhile is left out (its
        own attempt reports, alerts and counts it)."""
        attempts = []
        for lease in leases:
            at = self._clock()
            attempts.append((lease, at, *self._attempt_one(lease, lease.attempts + 1, at, principal)))
        after = self._leases.finish([(lease, update) for lease, _, _, update, _ in attempts],
                                    [event for *_, event in attempts])
        results: list[RevocationResult] = []
        for lease, at, status, update, _ in attempts:
            if lease.lease_id in after:
                results.append(RevocationResult(after[lease.lease_id], status))
                self._report(lease, at, status, update)
        return results

    def _report(self, lease: Lease, at: float, status: RevocationStatus, update: RevocationUpdate) -> None:
        """Metrics and alerts for one applied attempt."""
        metrics = self._metrics
        if status is RevocationStatus.FAILED:
            if metrics is not None:
                metrics.revoke_failures.inc()
            self._alert(lease, update.last_error or "unknown error")
        elif status is RevocationStatus.RETRYING and self._retry.alerts_while_waiting(update.attempts):
            self._alert(lease, f"still revoking after {update.attempts} attempts: {update.last_error}")
        elif status is RevocationStatus.REVOKED and metrics is not None:
            metrics.revoked.labels(lease.revoke_reason or "unknown").inc()
            if lease.revoke_reason == EXPIRED:
                metrics.reaper_lateness.observe(max(0.0, at - lease.expires_at))

    def _attempt_one(
        self, lease: Lease, attempts: int, now: float, principal: str
    ) -> tuple[RevocationStatus, RevocationUpdate, AuditEvent]:
        def event(kind: AuditKind, detail: str) -> AuditEvent:
            return AuditEvent(
                kind=kind,
                at=now,
                principal=principal,
                agent=lease.agent,
                task_id=lease.task_id,
                lease_id=lease.lease_id,
                engine=lease.engine,
                scopes=lease.scopes,
                detail=detail,
            )

        reason = lease.revoke_reason or "unknown"
        engine = self._engines.get(lease.engine)
        try:
            if lease.is_task_token:
                outcome = RevokeOutcome.REVOKED
            elif engine is None:
                raise LookupError(f"engine {lease.engine!r} is not configured")
            else:
                outcome = engine.revoke(lease.handle)
        except TransientEngineError as error:
            message = _short(error)
            if not self._retry.gives_up_after(attempts):
                if self._metrics is not None:
                    self._metrics.revoke_retries.inc()
                retry_at = now + self._retry.delay(attempts, self._rand)
                log.warning(
                    "revocation of lease %s will be retried (attempt %d): %s",
                    lease.lease_id,
                    attempts,
                    message,
                )
                update = RevocationUpdate(lease.lease_id, Step.RETRY, now, attempts, retry_at, message)
                detail = f"reason={reason}; attempt={attempts}; error={message}"
                return RevocationStatus.RETRYING, update, event(AuditKind.REVOKE_RETRY, detail)
            message = f"gave up after {attempts} attempts: {message}"
        except Exception as error:  # a permanent engine failure: terminal, alerted
            message = _short(error)
        else:
            kind = AuditKind.EXPIRE if reason == EXPIRED else AuditKind.REVOKE
            detail = f"reason={reason}; outcome={outcome.value}"
            if lease.revoke_detail:
                detail += f"; {lease.revoke_detail}"
            return (
                RevocationStatus.REVOKED,
                RevocationUpdate(lease.lease_id, Step.CONFIRM, now, attempts),
                event(kind, detail),
            )
        return (
            RevocationStatus.FAILED,
            RevocationUpdate(lease.lease_id, Step.GIVE_UP, now, attempts, None, message),
            event(AuditKind.REVOKE_FAILED, f"reason={reason}; attempts={attempts}; error={message}"),
        )


def _short(error: BaseException) -> str:
    text = f"{type(error).__name__}: {error}"
    return text if len(text) <= MAX_ERROR_CHARS else text[:MAX_ERROR_CHARS] + "…"

