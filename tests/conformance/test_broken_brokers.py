"""The suite against brokers broken on purpose, INSIDE THIS TEST PROCESS only (monkeypatching the
in-process broker the ``deployment`` fixture serves): each breakage makes exactly the tests that
cover it fail, and every other test still pass. Nothing here exists outside the tests.

Where a breakage fails more than one test, the comment says why that is the right verdict.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from jitsec.broker.engines.base import RevokeOutcome
from jitsec.broker.engines.ssh import SshEngine
from jitsec.broker.leak_desk import LeakDesk
from jitsec.broker.model import AuditEvent, AuditKind, LeaseState
from jitsec.broker.policy import Policy
from jitsec.broker.revoker import Revoker
from jitsec.broker.service import BrokerService, Completion

from jitsec.kernel.leaks import LeakStatus, LeakVerdict

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def failing(report: Any) -> set[str]:
    return {r.test_id for r in report.results if not r.passed}


def complete_without_revoking(
    self: BrokerService, task_id: str, principal: str, reason: str = "task_complete"
) -> Completion:
    """Marks the task complete and forgets to revoke its leases."""
    task = self.get_task(task_id)
    now = self.clock()
    newly = self.store.complete_task(
        task.task_id,
        now,
        AuditEvent(
            kind=AuditKind.TASK_COMPLETE,
            at=now,
            principal=principal,
            agent=task.agent,
            task_id=task.task_id,
            scopes=task.scopes,
            detail=reason,
        ),
    )
    return Completion(task_id=task.task_id, newly_completed=newly, results=())


def test_completion_that_does_not_revoke_fails_8_2(
    deployment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(BrokerService, "complete_task", complete_without_revoking)
    report, _ = deployment.run(tmp_path)
    # 8.6 is the adversarial form of the same property: post-task replay of the task's secrets works.
    assert failing(report) == {"8.2", "8.6"}
    checks = {c.name: c.passed for c in report.results[1].checks}
    assert checks["open database session terminated at completion"] is False


def test_reaper_that_never_expires_fails_8_1(
    deployment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Revoker, "expire_due", lambda self, limit: 0)
    report, _ = deployment.run(tmp_path)
    assert failing(report) == {"8.1"}
    checks = {c.name: c.passed for c in report.results[0].checks}
    # Expiry at the resource still holds without the reaper (introspection checks the time,
    # PostgreSQL checks VALID UNTIL); the broker's own revocation and the open session do not.
    assert checks["token inactive at introspection after its TTL"] is True
    assert checks["broker revoked the expired lease on its own (no completion, agent silent)"] is False
    assert checks["open database session ended after the TTL"] is False


def test_policy_that_lets_everything_through_fails_8_3(
    deployment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Policy, "task_ttl", lambda self, agent, scopes, ttl: ttl or 600)
    monkeypatch.setattr(Policy, "secret_ttl", lambda self, agent, engine, limits, scopes, ttl: ttl or 60)
    report, _ = deployment.run(tmp_path)
    assert failing(report) == {"8.3"}
    refused = [c for c in report.results[2].checks if not c.passed]
    assert {c.name for c in refused} >= {
        "task for a scope beyond the agent's policy refused",
        "task for a table beyond the agent's policy refused",
    }


def test_issuance_that_repeats_secrets_fails_8_4(
    deployment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = BrokerService.issue
    handed_out: dict[tuple[str, str, tuple[str, ...]], Any] = {}

    def repeating(
        self: BrokerService,
        caller: Any,
        engine_name: str,
        scopes: Any,
        ttl_seconds: Any = None,
        *,
        rotated_from: str | None = None,
        public_key: str = "",
    ) -> Any:
        """A 'cache' that answers a task's repeated request with the secret it already has."""
        key = (caller.task.task_id, engine_name, tuple(scopes))
        if rotated_from is None and key in handed_out:
            return handed_out[key]
        issued = original(self, caller, engine_name, scopes, ttl_seconds, rotated_from=rotated_from,
                          public_key=public_key)
        handed_out[key] = issued
        return issued

    monkeypatch.setattr(BrokerService, "issue", repeating)
    report, _ = deployment.run(tmp_path)
    assert failing(report) == {"8.4"}
    checks = {c.name: c.passed for c in report.results[3].checks}
    assert checks["all grants, task tokens and secrets are distinct"] is False


def test_broker_that_logs_secrets_fails_8_5(
    deployment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("jitsec.broker.service.preview", lambda secret: secret)  # the debug line gets it all
    report, _ = deployment.run(tmp_path)
    assert failing(report) == {"8.5"}
    checks = {c.name: c.passed for c in report.results[4].checks}
    assert checks["no issued secret in the broker's logs"] is False
    assert checks["no issued secret in the agent's environment"] is True


def test_completion_that_misses_rotated_secrets_fails_8_6(
    deployment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store_class = type(deployment.broker.store)
    original = store_class.leases_of_task

    def forgetful(self: Any, task_id: str, states: Any = None) -> Any:
        leases = original(self, task_id, states)
        if states is not None and LeaseState.ACTIVE in states:
            leases = [lease for lease in leases if lease.rotated_from is None]
        return leases

    monkeypatch.setattr(store_class, "leases_of_task", forgetful)
    report, _ = deployment.run(tmp_path)
    assert failing(report) == {"8.6"}
    checks = {c.name: c.passed for c in report.results[5].checks}
    assert checks["post-task replay of every credential the task held fails"] is False


def test_leak_reports_that_revoke_nothing_fail_8_7(
    deployment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        LeakDesk,
        "report",
        lambda self, principal, reports, on_leak=None: [
            LeakVerdict(fingerprint=r.fingerprint, status=LeakStatus.UNKNOWN) for r in reports
        ],
    )
    report, _ = deployment.run(tmp_path, leak_threshold_seconds=2.0)
    assert failing(report) == {"8.7"}
    checks = {c.name: c.passed for c in report.results[6].checks}
    assert checks["the leaked token is revoked within the threshold"] is False


def test_ssh_revocation_that_leaves_the_krl_alone_fails_8_2(
    deployment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(SshEngine, "revoke", lambda self, handle: RevokeOutcome.REVOKED)  # says so, does not
    report, _ = deployment.run(tmp_path)
    assert failing(report) == {"8.2"}  # no other test holds an SSH certificate
    checks = {c.name: c.passed for c in report.results[1].checks}
    assert checks["SSH certificate not in the KRL before completion"] is True
    assert checks["SSH certificate listed in the KRL after completion"] is False
    assert all(passed for name, passed in checks.items() if name.startswith("token "))
