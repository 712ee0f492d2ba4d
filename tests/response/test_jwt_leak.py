"""The leak loop for a JWT access token: a real broker with the jwt engine over loopback HTTP, the real
tail source, scanner and responder. The scanner's ``broker-jwt`` rule reports the token's fingerprint,
the broker revokes its lease, and introspection says inactive."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from jitsec.broker.model import AuditKind, LeaseState
from jitsec.connectors.sinks.jsonl import JsonlSink
from jitsec.connectors.sinks.spool import Backoff
from jitsec.scanner.ruleset import load_ruleset

from jitsec.testing import AGENT, EmbeddedBroker, LoopScanner, wait_until


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    running = EmbeddedBroker(tmp_path, engines={"jwt": {"keys": str(tmp_path / "jwt-keys")}},
                             policy_engines={"jwt": {"scopes": ["reports:read"]}}).start()
    yield running
    running.close()


def test_a_leaked_jwt_is_found_by_its_own_rule_revoked_and_then_inactive(broker: EmbeddedBroker,
                                                                         tmp_path: Path) -> None:
    service = broker.broker.service
    started = service.start_task("orchestrator", AGENT, "report", ["reports:read"], 600)
    caller = service.authenticate_task_token(service.redeem(started.task.task_id, started.grant).token)
    issued = service.issue(caller, "jwt", ["reports:read"])
    token, lease_id = issued.secret, issued.lease.lease_id
    assert service.introspect(token, "test").active
    log, alerts = tmp_path / "agent.log", tmp_path / "alerts.jsonl"
    log.write_text("")
    sink = JsonlSink(alerts, tmp_path / "spool", backoff=Backoff(0.01, 0.1))
    scanner = LoopScanner(log, broker.url, broker.keys["scanner"], tmp_path / "state", [sink],
                          ruleset=load_ruleset(), engine="python").start()
    try:
        with log.open("a", encoding="utf-8") as out:
            out.write(f"2026-01-01T00:00:00Z DEBUG http: Authorization: Bearer {token}\n")
        assert wait_until(lambda: not service.introspect(token, "test").active)
        lease = service.get_lease(lease_id)
        assert lease.state is LeaseState.REVOKED and lease.revoke_reason == "leak"

        def incidents() -> list[dict]:
            return [json.loads(line) for line in alerts.read_text().splitlines()] if alerts.exists() else []

        assert wait_until(lambda: any(i["action"] == "revoked" for i in incidents()))
    finally:
        scanner.close()
    [incident] = [i for i in incidents() if i["action"] == "revoked"]
    assert incident["lease_id"] == lease_id and incident["rule_id"] == "broker-jwt"
    assert token not in alerts.read_text() and token.split(".")[2] not in alerts.read_text()
    kinds = [r.event.kind for r in broker.broker.store.audit_records() if r.event.lease_id == lease_id]
    assert AuditKind.LEAK in kinds and AuditKind.REVOKE in kinds
