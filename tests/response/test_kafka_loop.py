"""DESIGN.md "The loop", one record's path, against the real Kafka: a log record produced to a topic
→ the Kafka source → engine → responder → broker revokes → one incident; the group's offset is
committed past the record only after the response was durable."""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path

import pytest
from jitsec.broker.client import BrokerClient
from jitsec.connectors.sources.kafka import KafkaSource, KafkaSourceSettings, parse_kafka_address
from jitsec.scanner.engine import Scanner
from jitsec.scanner.fingerprint import Fingerprinter
from jitsec.scanner.ruleset import load_ruleset
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from jitsec.kernel.records import Chunk, Finding, KafkaOrigin, ResponseAction
from jitsec.pipeline.runner import run_sources
from jitsec.pipeline.stages import Callback
from jitsec.response.responder import Responder
from jitsec.testing import AGENT, EmbeddedBroker, wait_until

pytestmark = pytest.mark.kafka

FAST = KafkaSourceSettings(poll_timeout_ms=100, commit_interval_s=0.2, idle_exit_s=8.0,
                           retry_initial_s=0.1, retry_max_s=0.5, session_timeout_ms=6000)




def committed(bootstrap: str, topic: str, group: str) -> int | None:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        return consumer.committed(TopicPartition(topic, 0))
    finally:
        consumer.close(autocommit=False)


def test_a_token_produced_to_kafka_is_revoked_and_the_offset_follows(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    topic, group = f"jitsec-loop-{uuid.uuid4().hex[:10]}", f"g-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        admin.close()
    broker = EmbeddedBroker(tmp_path).start()
    service = broker.broker.service
    started = service.start_task("orchestrator", AGENT, "report", ["reports:read"], 600)
    caller = service.authenticate_task_token(service.redeem(started.task.task_id, started.grant).token)
    token = service.issue(caller, "token", ["reports:read"]).secret

    client = BrokerClient(broker.url, key=broker.keys["scanner"])
    responder = Responder([], broker=client, state_dir=tmp_path / "state")
    handled: list[tuple[Chunk, list[Finding]]] = []

    def on_findings(chunk: Chunk, findings: list[Finding]) -> None:
        handled.append((chunk, responder.respond(chunk, findings)))

    source = KafkaSource(parse_kafka_address(f"kafka://{kafka_bootstrap}/{topic}?group={group}"),
                         follow=True, settings=FAST)
    scanner = Scanner(load_ruleset(), Fingerprinter(b"k" * 32), engine="python")
    stop = threading.Event()
    thread = threading.Thread(target=run_sources, args=([source], scanner, [Callback(on_findings)]),
                              kwargs={"stop": stop}, daemon=True)
    thread.start()
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    try:
        for value in (b"service started", json.dumps({"level": "debug", "auth": f"Bearer {token}"}).encode(),
                      b"request served"):
            producer.send(topic, value)
        producer.flush(timeout=30)
        assert wait_until(lambda: not service.introspect(token, "t").active)
        assert wait_until(lambda: any(findings for _, findings in handled))
        [(chunk, [finding])] = [(c, f) for c, f in handled if f]
        assert isinstance(chunk.origin, KafkaOrigin)  # a poll's records of one partition
        assert finding.origin == KafkaOrigin(topic, 0, 1, "auth")
        assert finding.broker is not None and finding.broker.value == "revoked"
        [incident] = responder.incidents.snapshot()
        assert incident.action is ResponseAction.REVOKED
        assert incident.locations[0].startswith(f"kafka:{topic}/0@1")
        assert wait_until(lambda: (committed(kafka_bootstrap, topic, group) or 0) >= 2)
    finally:
        producer.close()
        stop.set()
        source.close()
        thread.join(30)
        responder.close()
        client.close()
        broker.close()
