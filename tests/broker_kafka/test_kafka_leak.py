"""The loop with the Kafka engine against the real Kafka: a lease's ``jitkf_`` password written to a
log line is found by the scanner, reported, the lease revoked (user and ACLs deleted), and the next
login with it is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from jitsec.scanner.ruleset import load_ruleset

from jitsec.testing import AGENT, EmbeddedBroker, LoopScanner, wait_until
from tests.broker_kafka.clients import LOGIN_REFUSED, LeaseClient
from tests.broker_kafka.conftest import Sasl

pytestmark = pytest.mark.kafka


def test_a_leaked_kafka_password_stops_working(
        tmp_path: Path, kafka_sasl: Sasl, topics: dict[str, str], user_prefix: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    bootstrap, admin, admin_password = kafka_sasl
    monkeypatch.setenv("JITSEC_KAFKA_ADMIN_PASSWORD", admin_password)
    scopes = [f"kafka:topic:{topics['mine']}:READ", "kafka:group:jitsec-kafka-test"]
    broker = EmbeddedBroker(
        tmp_path,
        engines={"kafka": {"bootstrap_servers": bootstrap, "admin_username": admin,
                           "user_prefix": user_prefix, "scram_iterations": 4096,
                           "default_ttl_seconds": 60, "max_ttl_seconds": 600}},
        policy_engines={"kafka": {"scopes": scopes}},
    ).start()
    log = tmp_path / "worker.log"
    log.write_text("")
    loop = LoopScanner(log, broker.url, broker.keys["scanner"], tmp_path / "state",
                       ruleset=load_ruleset(), engine="python").start()
    client: LeaseClient | None = None
    try:
        service = broker.broker.service
        started = service.start_task("orchestrator", AGENT, "nightly report", scopes, 600)
        caller = service.authenticate_task_token(service.redeem(started.task.task_id, started.grant).token)
        issued = service.issue(caller, "kafka", scopes)
        user, password = issued.lease.username or "", issued.secret
        assert password.startswith("jitkf_")
        client = LeaseClient(bootstrap, user, password)
        assert client.read_first(topics["mine"]).ok
        with log.open("a") as out:
            out.write(f"ERROR worker: sasl.username={user} sasl.password={password} login failed, retrying\n")
        assert wait_until(lambda: bool(loop.responder.incidents.snapshot()), 20, interval=0.02)
        [incident] = loop.responder.incidents.snapshot()
        assert incident.action.value == "revoked" and incident.lease_id == issued.lease.lease_id
        assert client.read_first(topics["mine"]).error == LOGIN_REFUSED
    finally:
        if client is not None:
            client.close()
        loop.close()
        broker.close()
