"""The loop end to end: a real broker over loopback HTTP, the real tail source, engine, pipeline,
responder and a JSONL sink. Tests wait on outcomes (introspection, files), never on wall time."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from jitsec.broker.model import AuditKind, LeaseState
from jitsec.connectors.sinks.jsonl import JsonlSink
from jitsec.connectors.sinks.spool import Backoff
from jitsec.scanner.ruleset import RuleSet, load_ruleset

from jitsec.kernel.records import BrokerStatus, ResponseAction
from jitsec.testing import AGENT, EmbeddedBroker, LoopScanner, wait_until


@pytest.fixture(scope="module")
def ruleset() -> RuleSet:
    return load_ruleset()


@dataclass
class Loop:
    broker: EmbeddedBroker
    scanner: LoopScanner
    log: Path
    alerts: Path

    def issue(self) -> tuple[str, str]:
        """A live token of an open task (issued in-process), and its lease id."""
        service = self.broker.broker.service
        started = service.start_task("orchestrator", AGENT, "report", ["reports:read"], 600)
        redeemed = service.redeem(started.task.task_id, started.grant)
        issued = service.issue(service.authenticate_task_token(redeemed.token), "token", ["reports:read"])
        return issued.secret, issued.lease.lease_id

    def leak(self, text: str) -> None:
        with self.log.open("a", encoding="utf-8") as out:
            out.write(f"2026-01-01T00:00:00Z DEBUG client: {text}\n")

    def is_active(self, token: str) -> bool:
        return self.broker.broker.service.introspect(token, "test").active

    def incidents(self) -> list[dict]:
        if not self.alerts.exists():
            return []
        return [json.loads(line) for line in self.alerts.read_text().splitlines()]


def make_loop(tmp_path: Path, ruleset: RuleSet, *, serve: bool = True) -> Loop:
    broker = EmbeddedBroker(tmp_path)
    if serve:
        broker.start()
    log, alerts = tmp_path / "agent.log", tmp_path / "alerts.jsonl"
    log.write_text("")
    sink = JsonlSink(alerts, tmp_path / "spool", backoff=Backoff(0.01, 0.1))
    scanner = LoopScanner(log, broker.url, broker.keys["scanner"], tmp_path / "state", [sink],
                          ruleset=ruleset, engine="python")
    return Loop(broker, scanner.start(), log, alerts)


@pytest.fixture
def loop(tmp_path: Path, ruleset: RuleSet) -> Iterator[Loop]:
    running = make_loop(tmp_path, ruleset)
    yield running
    running.scanner.close()
    running.broker.close()


def test_a_leaked_token_is_revoked_and_alerted(loop: Loop, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    token, lease_id = loop.issue()
    assert loop.is_active(token)
    loop.leak(f"Authorization: Bearer {token}")
    assert wait_until(lambda: not loop.is_active(token))
    lease = loop.broker.broker.service.get_lease(lease_id)
    assert lease.state is LeaseState.REVOKED and lease.revoke_reason == "leak"
    assert wait_until(lambda: any(i["action"] == "revoked" for i in loop.incidents()))
    [incident] = [i for i in loop.incidents() if i["action"] == "revoked"]
    assert incident["lease_id"] == lease_id and incident["agent"] == AGENT
    assert incident["latency_ms"] is not None and incident["latency_ms"] >= 0
    assert str(loop.log) in incident["locations"][0]
    assert token not in loop.alerts.read_text()
    assert token not in caplog.text
    kinds = [r.event.kind for r in loop.broker.broker.store.audit_records() if r.event.lease_id == lease_id]
    assert AuditKind.LEAK in kinds and AuditKind.REVOKE in kinds


def test_the_same_token_leaked_again_is_one_incident_with_two_occurrences(loop: Loop) -> None:
    token, _ = loop.issue()
    loop.leak(f"token={token}")
    assert wait_until(lambda: not loop.is_active(token))
    loop.leak(f"retrying with token={token}")
    book = loop.scanner.responder.incidents
    assert wait_until(lambda: [i.occurrences for i in book.snapshot()] == [2])
    loop.scanner.close()  # flushes the deferred update to the sink
    incidents = loop.incidents()
    assert {i["incident_id"] for i in incidents} == {incidents[0]["incident_id"]}
    assert incidents[-1]["occurrences"] == 2 and incidents[-1]["action"] == "revoked"


def test_a_dead_token_is_a_low_incident_and_nothing_is_revoked(loop: Loop) -> None:
    token, lease_id = loop.issue()
    service = loop.broker.broker.service
    service.complete_task(service.get_lease(lease_id).task_id, "orchestrator")
    loop.leak(f"old token {token}")
    assert wait_until(lambda: bool(loop.incidents()))
    [incident] = loop.incidents()
    assert incident["severity"] == "low" and incident["action"] == ResponseAction.ALREADY_DEAD.value
    assert incident["broker"] == BrokerStatus.DEAD.value
    revokes = [r.event for r in loop.broker.broker.store.audit_records()
               if r.event.kind is AuditKind.REVOKE and "reason=leak" in r.event.detail]
    assert revokes == []


def test_a_generic_high_entropy_string_never_revokes(loop: Loop) -> None:
    token, _ = loop.issue()
    loop.leak("password=Zq8#vR2!mK9pL4wXc7")
    assert wait_until(lambda: bool(loop.incidents()))
    assert all(i["action"] == "alert_only" for i in loop.incidents())
    assert loop.is_active(token)
    assert not [r for r in loop.broker.broker.store.audit_records() if r.event.kind is AuditKind.LEAK]


def test_broker_down_nothing_is_lost(tmp_path: Path, ruleset: RuleSet) -> None:
    running = make_loop(tmp_path, ruleset, serve=False)  # its port refuses connections for now
    try:
        token, lease_id = running.issue()
        running.leak(f"Bearer {token}")
        assert wait_until(lambda: any(i["action"] == "pending" for i in running.incidents()))
        assert running.scanner.responder.outbox_pending() == 1
        assert running.is_active(token)
        running.broker.start()
        assert wait_until(lambda: not running.is_active(token))
        assert wait_until(lambda: running.incidents()[-1]["action"] == "revoked")
        assert running.incidents()[-1]["lease_id"] == lease_id
    finally:
        running.scanner.close()
        running.broker.close()


def test_a_refused_port_really_refuses(tmp_path: Path) -> None:
    """Guard for the test above: a bound, non-listening socket refuses connections."""
    broker = EmbeddedBroker(tmp_path)
    try:
        host, port = broker.url.removeprefix("http://").split(":")
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((host, int(port)), timeout=2)
    finally:
        broker.close()  # never started: closes the bound socket and the broker
