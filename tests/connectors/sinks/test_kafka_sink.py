"""KafkaSink against the real broker: incidents arrive as jitsec.incident/1 JSON keyed by incident id, and a
broker that is not reachable yet only delays them (spooled, in order)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from jitsec.connectors.sinks.factory import build_sink
from jitsec.connectors.sinks.kafka import KafkaSink, parse_kafka_sink_spec
from jitsec.connectors.sinks.spool import Backoff
from kafka import KafkaConsumer

from jitsec.kernel import credential_format as cf
from jitsec.kernel.records import Confidence, Incident, ResponseAction, Severity
from jitsec.kernel.redaction import preview

FAST = Backoff(initial=0.05, maximum=0.3)


def make_incident(number: int, version: int = 1) -> tuple[Incident, str]:
    secret = cf.mint(cf.CredentialKind.ENGINE_TOKEN)
    incident = Incident(
        incident_id=f"inc-{number}", version=version, fingerprint=cf.sha256_fingerprint(secret),
        rule_id="jitsec-engine-token", description="broker-issued engine token", severity=Severity.CRITICAL,
        confidence=Confidence.CONFIRMED, preview=preview(secret), occurrences=version,
        first_seen=1_750_000_000.0, last_seen=1_750_000_000.0 + version,
        locations=(f"kafka:logs/0@{number}",),
        action=ResponseAction.REVOKED, lease_id=f"lease-{number}", agent="agent-a", task="task-1",
        latency_ms=12.5)
    return incident, secret


def test_sink_spec_parses_and_rejects() -> None:
    assert parse_kafka_sink_spec("kafka://127.0.0.1:9092/alerts") == ("127.0.0.1:9092", "alerts")
    for bad in ("kafka://127.0.0.1/alerts", "kafka://127.0.0.1:9092/", "kafka://h:1/a,b", "kafk://h:1/a"):
        with pytest.raises(ValueError, match="kafka://HOST:PORT/TOPIC"):
            parse_kafka_sink_spec(bad)


def _read(bootstrap: str, topic: str, count: int) -> list[tuple[bytes, dict]]:
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=20_000)
    try:
        out = []
        for record in consumer:
            out.append((record.key, json.loads(record.value)))
            if len(out) == count:
                break
        return out
    finally:
        consumer.close()


@pytest.mark.kafka
def test_incidents_arrive_as_json_keyed_by_incident_and_hold_no_secret(kafka_bootstrap: str,
                                                                        tmp_path: Path) -> None:
    topic = f"jitsec-alerts-{uuid.uuid4().hex[:10]}"
    sink = build_sink(f"kafka://{kafka_bootstrap}/{topic}", tmp_path)
    assert isinstance(sink, KafkaSink)
    sent = [make_incident(1), make_incident(2), make_incident(1, version=2)]
    for incident, _ in sent:
        sink.send(incident)
    assert sink.flush(timeout=60)
    sink.close()
    records = _read(kafka_bootstrap, topic, 3)
    assert [(key, value["incident_id"], value["version"]) for key, value in records] == [
        (b"inc-1", "inc-1", 1), (b"inc-2", "inc-2", 1), (b"inc-1", "inc-1", 2)]
    assert records[0][1]["schema"] == "jitsec.incident/1"
    assert records[0][1]["action"] == "revoked"
    raw = json.dumps([value for _, value in records])
    for _, secret in sent:
        assert secret not in raw


@pytest.mark.kafka
def test_a_broker_not_reachable_yet_delays_incidents_in_order(
    kafka_bootstrap: str, tmp_path: Path, tcp_proxy: Callable[[str, int], Any]
) -> None:
    topic = f"jitsec-alerts-{uuid.uuid4().hex[:10]}"
    host, _, port = kafka_bootstrap.rpartition(":")
    proxy = tcp_proxy(host, int(port))  # not listening yet
    sink = KafkaSink(f"127.0.0.1:{proxy.port}", topic, tmp_path, backoff=FAST, timeout=1.0)
    for number in range(3):
        sink.send(make_incident(number)[0])
    time.sleep(1.5)
    stats = sink.stats()
    assert stats.pending == 3 and stats.failures >= 1  # nothing lost, nothing delivered yet

    proxy.start()  # the bootstrap address comes up; metadata then names the real broker
    try:
        assert sink.flush(timeout=60)
    finally:
        sink.close()
    records = _read(kafka_bootstrap, topic, 3)
    assert [key for key, _ in records] == [b"inc-0", b"inc-1", b"inc-2"]

