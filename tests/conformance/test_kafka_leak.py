"""8.7 with a Kafka topic as the leak target: the suite produces the leaking log line to a real topic
and its own ``jitsec watch kafka://...`` consumer reports it; the token dies within the threshold."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from jitsec.conformance.settings import LeakTarget

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]


def test_leak_planted_in_a_kafka_topic_is_revoked(deployment, kafka_bootstrap: str, tmp_path: Path) -> None:
    from kafka.admin import KafkaAdminClient, NewTopic  # noqa: PLC0415

    topic = f"jitsec-conformance-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
        target = LeakTarget("kafka", bootstrap=kafka_bootstrap, topic=topic)
        report, _ = deployment.run(tmp_path, only=("8.7",), leak_target=target, start_watcher=True)
    finally:
        admin.delete_topics([topic])
        admin.close()
    [result] = report.results
    assert result.passed, [c for c in result.checks if not c.passed] or result.error
    assert float(result.fact("leak_latency_ms") or "nan") > 0
