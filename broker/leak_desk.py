"""The broker's handling of leak reports (``POST /v1/leaks``, ``GET /v1/fingerprints``), on top of
``BrokerService``. What a report asks and what each verdict means is in ``broker.leaks``, with the
wire records; this module is the one that revokes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from jitsec.broker.errors import BadRequest
from jitsec.broker.leak_budget import RevocationBudget
from jitsec.broker.leaks import (
    DEFAULT_PAGE,
    MAX_PAGE,
    SCOPE_RANK,
    FingerprintEntry,
    FingerprintPage,
    LeakReport,
    LeakScope,
    LeakSettings,
    LeakStatus,
    LeakVerdict,
)
from jitsec.broker.model import AuditEvent, AuditKind, Lease, LeaseState
from jitsec.broker.revocation import RevocationStatus
from jitsec.broker.service import BrokerService

from jitsec.kernel.credential_format import live_lookup

LEAK_REASON = "leak"
alert_log = logging.getLogger("jitsec.broker.alerts")

_RESULT_STATUS = {
    RevocationStatus.REVOKED: LeakStatus.REVOKED,
    RevocationStatus.ALREADY_REVOKED: LeakStatus.DEAD,
    RevocationStatus.RETRYING: LeakStatus.PENDING,
    RevocationStatus.FAILED: LeakStatus.FAILED,
}
_STATE_STATUS = {
    LeaseState.REVOKING: LeakStatus.PENDING,
    LeaseState.FAILED: LeakStatus.FAILED,
    LeaseState.REVOKED: LeakStatus.DEAD,
    LeaseState.ACTIVE: LeakStatus.DEAD,  # active in the store but past its expiry: the reaper's now
}


class LeakDesk:
    """Handles leak reports and serves live lookups, on top of ``BrokerService``.

    A report proves possession: it carries the secret's SHA-256, which the broker never publishes
    (``GET /v1/fingerprints`` lists ``live_lookup`` hashes of it). Only the broker's policy widens a
    leak beyond its lease (an admin may ask for more), and a reporter's revocations are budgeted.
    """

    def __init__(self, service: BrokerService, settings: LeakSettings | None = None,
                 budget: RevocationBudget | None = None) -> None:
        self.service = service
        self.settings = settings or LeakSettings()
        self.budget = budget or RevocationBudget(self.settings.budget, self.settings.budget_window_seconds)

    def report(self, principal: str, reports: Sequence[LeakReport],
               on_leak: LeakScope | None = None, *, admin: bool = False) -> list[LeakVerdict]:
        """One verdict per report, in order. Duplicate fingerprints in a batch are handled once.
        ``admin`` callers may widen beyond the policy's scope and have no revocation budget."""
        scope = self._scope(principal, on_leak, admin)
        done: dict[str, LeakVerdict] = {}
        for report in reports:
            if report.fingerprint not in done:
                done[report.fingerprint] = self._one(principal, report, scope, admin)
        return [done[report.fingerprint] for report in reports]

    def _scope(self, principal: str, asked: LeakScope | None, admin: bool) -> LeakScope:
        """What the reports may cost: the policy's scope, narrowed on request; wider only for admins."""
        policy = self.settings.default_scope
        if asked is None or admin or SCOPE_RANK[asked] <= SCOPE_RANK[policy]:
            return asked or policy
        self.service.audit(AuditEvent(
            kind=AuditKind.LEAK, at=self.service.clock(), principal=principal,
            detail=f"on_leak={asked.value} asked; the broker's policy allows {policy.value}: "
                   f"applied {policy.value}",
        ))
        return policy

    def _one(self, principal: str, report: LeakReport, scope: LeakScope, admin: bool) -> LeakVerdict:
        service = self.service
        lease = service.lease_by_fingerprint(report.fingerprint)
        where = _where(report)
        if lease is None:
            service.audit(AuditEvent(kind=AuditKind.LEAK, at=service.clock(), principal=principal,
                                     detail=_clean(f"unknown fingerprint {report.fingerprint[:16]}; "
                                                         f"{where}")))
            return LeakVerdict(report.fingerprint, LeakStatus.UNKNOWN)
        also: list[str] = []
        live = lease.is_live(service.clock())
        if live and not admin and not self.budget.take(principal):
            status = LeakStatus.REFUSED
            outcome = (f"refused: {principal} spent its revocation budget ({self.settings.budget} per "
                       f"{self.settings.budget_window_seconds:g} s); the credential is still live")
            alert_log.error("leak report REFUSED for lease %s (agent %s): %s", lease.lease_id, lease.agent,
                            _clean(outcome))
        elif live:
            result = service.revoke_lease(lease.lease_id, LEAK_REASON, where, principal)
            status = _RESULT_STATUS[result.status]
            lease = result.lease
            if status is LeakStatus.REVOKED or status is LeakStatus.PENDING:
                also = self._widen(principal, lease, scope, where)
                if not admin:
                    self.budget.charge(principal, len(also))
            outcome = status.value
            if also:
                outcome += f"; also revoked {len(also)} lease(s) ({scope.value})"
        else:
            status = _STATE_STATUS[lease.state]
            outcome = f"already {lease.state.value}"
        service.audit(AuditEvent(
            kind=AuditKind.LEAK, at=service.clock(), principal=principal, agent=lease.agent,
            task_id=lease.task_id, lease_id=lease.lease_id, engine=lease.engine, scopes=lease.scopes,
            resource=_clean(report.location), detail=_clean(f"{outcome}; {where}"),
        ))
        return LeakVerdict(
            report.fingerprint, status, lease_id=lease.lease_id, agent=lease.agent, task_id=lease.task_id,
            engine=lease.engine, scopes=lease.scopes,
            revoked_at=lease.revoked_at or lease.revoke_requested_at,
            also_revoked=tuple(also),
        )

    def _widen(self, principal: str, lease: Lease, scope: LeakScope, where: str) -> list[str]:
        """Revoke beyond the leaked lease when asked (or when a task token leaked)."""
        if lease.is_task_token and scope is LeakScope.LEASE:
            scope = LeakScope.TASK
        if scope is LeakScope.TASK:
            completion = self.service.complete_task(lease.task_id, principal, reason=LEAK_REASON)
            return [r.lease.lease_id for r in completion.results]
        if scope is LeakScope.AGENT:
            completions = self.service.quarantine_agent(lease.agent, principal,
                                                        detail=f"leak of lease {lease.lease_id}; {where}")
            return [r.lease.lease_id for c in completions for r in c.results]
        return []

    def fingerprints(self, cursor: str | None, limit: int = DEFAULT_PAGE) -> FingerprintPage:
        """Fingerprints of live leases, ``limit`` at a time, from ``cursor`` (None: the start)."""
        if not 1 <= limit <= MAX_PAGE:
            raise BadRequest(f"limit must be between 1 and {MAX_PAGE}")
        page = self.service.store.live_leases(cursor, limit, self.service.clock())
        entries = tuple(FingerprintEntry(live_lookup(lease.fingerprint), lease.expires_at)
                        for lease in page.leases)
        return FingerprintPage(entries, page.next_cursor)


def _where(report: LeakReport) -> str:
    parts = [f"seen at {report.location or '?'}"]
    if report.rule_id:
        parts.append(f"rule {report.rule_id}")
    if report.seen_at is not None:
        parts.append(f"read {report.seen_at:.3f}")
    return ", ".join(parts)


def _clean(text: str, limit: int = 500) -> str:
    """Free text bound for the audit: printable, bounded (the audit's own limit is 500)."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)[:limit]
