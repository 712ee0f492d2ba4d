"""The broker's leak handling (``broker.leak_desk``) over a real SQLite store; HTTP is tested end to end."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jitsec.broker.engines.token import TokenEngine
from jitsec.broker.errors import BadRequest
from jitsec.broker.leak_budget import RevocationBudget
from jitsec.broker.leak_desk import LeakDesk
from jitsec.broker.leaks import LeakReport, LeakScope, LeakSettings, LeakStatus, parse_reports, reports_body
from jitsec.broker.model import AuditKind, LeaseState
from jitsec.broker.policy import AgentPolicy, EnginePolicy, Policy
from jitsec.broker.revocation import RetryPolicy
from jitsec.broker.revoker import Revoker
from jitsec.broker.service import BrokerService
from jitsec.broker.store.registry import open_store

from jitsec.kernel.credential_format import live_lookup, sha256_fingerprint


@pytest.fixture
def service(tmp_path: Path) -> Iterator[BrokerService]:
    store = open_store(f"sqlite://{tmp_path / 'broker.db'}", b"k" * 32)
    store.migrate()
    engines = {"token": TokenEngine()}
    policy = Policy((AgentPolicy("demo-agent", 900, {"token": EnginePolicy(("reports:*",))}),))
    yield BrokerService(store, engines, policy, Revoker(store, engines, RetryPolicy()))
    store.close()


def issue(service: BrokerService, count: int = 1) -> tuple[str, list]:
    started = service.start_task("orchestrator", "demo-agent", "nightly report", ["reports:read"], 600)
    redeemed = service.redeem(started.task.task_id, started.grant)
    caller = service.authenticate_task_token(redeemed.token)
    return redeemed.token, [service.issue(caller, "token", ["reports:read"]) for _ in range(count)]


def test_a_live_lease_is_revoked_with_the_location_audited(service: BrokerService) -> None:
    _, [secret] = issue(service)
    desk = LeakDesk(service)
    [verdict] = desk.report("scanner", [LeakReport(sha256_fingerprint(secret.secret), "/var/log/a.log:3",
                                                    "jitsec-engine-token")])
    assert verdict.status is LeakStatus.REVOKED and verdict.lease_id == secret.lease.lease_id
    assert verdict.agent == "demo-agent" and verdict.revoked_at is not None
    lease = service.get_lease(secret.lease.lease_id)
    assert lease.state is LeaseState.REVOKED and lease.revoke_reason == "leak"
    assert not service.introspect(secret.secret, "resource").active
    records = [r.event for r in service.store.audit_records()]
    leak = [e for e in records if e.kind is AuditKind.LEAK]
    revoke = [e for e in records if e.kind is AuditKind.REVOKE and e.lease_id == lease.lease_id]
    assert leak and "/var/log/a.log:3" in leak[0].detail and leak[0].lease_id == lease.lease_id
    assert revoke and "reason=leak" in revoke[0].detail
    assert not any(secret.secret in (e.detail + e.resource) for e in records)


def test_a_second_report_says_dead_and_an_unknown_fingerprint_unknown(service: BrokerService) -> None:
    _, [secret] = issue(service)
    desk = LeakDesk(service)
    fp = sha256_fingerprint(secret.secret)
    desk.report("scanner", [LeakReport(fp)])
    dead, unknown = desk.report("scanner", [LeakReport(fp), LeakReport("ab" * 32)])
    assert dead.status is LeakStatus.DEAD and dead.lease_id == secret.lease.lease_id
    assert unknown.status is LeakStatus.UNKNOWN and unknown.lease_id is None


def test_on_leak_task_revokes_every_lease_of_the_task(service: BrokerService) -> None:
    _, secrets = issue(service, 3)
    desk = LeakDesk(service, LeakSettings(default_scope=LeakScope.TASK))
    [verdict] = desk.report("scanner", [LeakReport(sha256_fingerprint(secrets[0].secret))])
    assert verdict.status is LeakStatus.REVOKED
    assert {s.lease.lease_id for s in secrets[1:]} <= set(verdict.also_revoked)
    assert all(not service.introspect(s.secret, "r").active for s in secrets)
    assert service.get_task(secrets[0].lease.task_id).completed_at is not None


def test_on_leak_agent_quarantines_the_agent(service: BrokerService) -> None:
    _, first = issue(service)
    _, second = issue(service)  # another task of the same agent
    LeakDesk(service, LeakSettings(default_scope=LeakScope.AGENT)).report(
        "scanner", [LeakReport(sha256_fingerprint(first[0].secret))])
    assert not service.introspect(second[0].secret, "r").active
    assert service.store.is_quarantined("demo-agent")


def test_a_leaked_task_token_ends_its_task(service: BrokerService) -> None:
    token, [secret] = issue(service)
    [verdict] = LeakDesk(service).report("scanner", [LeakReport(sha256_fingerprint(token))])
    assert verdict.status is LeakStatus.REVOKED and secret.lease.lease_id in verdict.also_revoked
    assert not service.introspect(secret.secret, "r").active


def test_fingerprints_page_through_live_leases_only(service: BrokerService) -> None:
    token, secrets = issue(service, 5)
    desk = LeakDesk(service)
    desk.report("scanner", [LeakReport(sha256_fingerprint(secrets[0].secret))])
    seen: list[str] = []
    cursor = None
    while True:
        page = desk.fingerprints(cursor, limit=2)
        seen.extend(entry.lookup for entry in page.entries)
        cursor = page.next_cursor
        if cursor is None:
            break
    expected = {live_lookup(sha256_fingerprint(s.secret)) for s in secrets[1:]} | {
        live_lookup(sha256_fingerprint(token))}
    assert set(seen) == expected and len(seen) == len(expected)
    published = set(seen)
    assert not published & {sha256_fingerprint(s.secret) for s in secrets}  # never what a report proves
    with pytest.raises(BadRequest):
        desk.fingerprints(None, limit=0)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "'leaks' list"),
        ({"leaks": []}, "1 to 1000"),
        ({"leaks": [{"fingerprint": "jit_notahash"}]}, "never the secret"),
        ({"leaks": [{"fingerprint": "a" * 64, "seen_at": "now"}]}, "seen_at"),
        ({"leaks": [{"fingerprint": "a" * 64}], "on_leak": "everything"}, "on_leak"),
    ],
)
def test_bad_report_bodies_are_refused_with_a_reason(body: dict, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        parse_reports(body)


@given(st.lists(st.builds(LeakReport, fingerprint=st.text("0123456789abcdef", min_size=64, max_size=64),
                          location=st.text(max_size=50), rule_id=st.text(max_size=20),
                          seen_at=st.none() | st.floats(0, 2e9)), min_size=1, max_size=5),
       st.none() | st.sampled_from(list(LeakScope)))
def test_report_bodies_round_trip(reports: list[LeakReport], scope: LeakScope | None) -> None:
    parsed, parsed_scope = parse_reports(reports_body(reports, scope))
    assert parsed_scope == scope
    assert [p.fingerprint for p in parsed] == [r.fingerprint for r in reports]
    assert all(p.location.isprintable() for p in parsed)


def test_the_published_list_revokes_nothing(service: BrokerService) -> None:
    """A stolen scanner key reads every live lookup; reported back, they match no lease."""
    _, secrets = issue(service, 3)
    desk = LeakDesk(service)
    lookups = [entry.lookup for entry in desk.fingerprints(None, limit=100).entries]
    verdicts = desk.report("scanner", [LeakReport(lookup) for lookup in lookups])
    assert {verdict.status for verdict in verdicts} == {LeakStatus.UNKNOWN}
    assert all(service.get_lease(s.lease.lease_id).state is LeaseState.ACTIVE for s in secrets)
    # whoever saw a secret proves it with the secret's own SHA-256
    [verdict] = desk.report("scanner", [LeakReport(sha256_fingerprint(secrets[0].secret))])
    assert verdict.status is LeakStatus.REVOKED


def test_a_scanner_cannot_widen_a_leak_beyond_the_policy(service: BrokerService) -> None:
    _, first = issue(service, 2)
    _, other_task = issue(service)
    desk = LeakDesk(service)  # policy: the leaked lease only
    [verdict] = desk.report("scanner", [LeakReport(sha256_fingerprint(first[0].secret))], LeakScope.AGENT)
    assert verdict.status is LeakStatus.REVOKED and verdict.also_revoked == ()
    assert service.introspect(first[1].secret, "r").active  # the rest of the task lives
    assert service.introspect(other_task[0].secret, "r").active and not service.store.is_quarantined(
        "demo-agent")
    details = [r.event.detail for r in service.store.audit_records() if r.event.kind is AuditKind.LEAK]
    assert any("on_leak=agent asked" in detail and "applied lease" in detail for detail in details)


def test_a_scanner_may_narrow_and_an_admin_may_widen(service: BrokerService) -> None:
    _, narrowed = issue(service, 2)
    desk = LeakDesk(service, LeakSettings(default_scope=LeakScope.TASK))
    desk.report("scanner", [LeakReport(sha256_fingerprint(narrowed[0].secret))], LeakScope.LEASE)
    assert service.introspect(narrowed[1].secret, "r").active
    _, widened = issue(service, 2)
    [verdict] = LeakDesk(service).report(
        "admin", [LeakReport(sha256_fingerprint(widened[0].secret))], LeakScope.TASK, admin=True)
    assert widened[1].lease.lease_id in verdict.also_revoked


def test_past_its_budget_a_reporter_is_refused_and_the_refusal_is_loud(
        service: BrokerService, caplog: pytest.LogCaptureFixture) -> None:
    _, secrets = issue(service, 4)
    desk = LeakDesk(service, LeakSettings(budget=2))
    verdicts = desk.report("scanner", [LeakReport(sha256_fingerprint(s.secret)) for s in secrets])
    assert [v.status for v in verdicts] == [LeakStatus.REVOKED] * 2 + [LeakStatus.REFUSED] * 2
    assert [service.introspect(s.secret, "r").active for s in secrets] == [False, False, True, True]
    assert any("REFUSED" in record.getMessage() and record.levelname == "ERROR" for record in caplog.records)
    details = [r.event.detail for r in service.store.audit_records() if r.event.kind is AuditKind.LEAK]
    assert sum("revocation budget" in detail for detail in details) == 2
    # another principal has its own budget; an admin has none
    [other] = LeakDesk(service, LeakSettings(budget=2), desk.budget).report(
        "scanner-2", [LeakReport(sha256_fingerprint(secrets[2].secret))])
    assert other.status is LeakStatus.REVOKED
    [by_admin] = desk.report("admin", [LeakReport(sha256_fingerprint(secrets[3].secret))], admin=True)
    assert by_admin.status is LeakStatus.REVOKED


def test_the_budget_window_slides() -> None:
    now = [0.0]
    budget = RevocationBudget(2, 60, clock=lambda: now[0])
    assert budget.take("s") and budget.take("s") and not budget.take("s")
    now[0] = 59.0
    assert not budget.take("s")
    now[0] = 60.5
    assert budget.take("s") and budget.spent("s") == 1
    budget.charge("s", 5)
    assert budget.spent("s") == 6 and not budget.take("s")
    assert RevocationBudget(0, 60).take("s", 10**6)  # 0: no cap
