"""The Kafka broker started by scripts/services accepts a produce and serves it back to a consumer group
that commits its offset, on loopback, with the kafka-python client the connectors use."""

from __future__ import annotations

import uuid

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

pytestmark = pytest.mark.kafka


def test_kafka_round_trips_a_record_and_a_committed_offset(kafka_bootstrap: str) -> None:
    assert kafka_bootstrap.startswith("127.0.0.1:")
    topic = f"jitsec-smoke-{uuid.uuid4().hex[:12]}"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    finally:
        admin.close()
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    metadata = producer.send(topic, b"smoke", partition=1).get(timeout=30)
    producer.close()
    assert metadata.partition == 1

    consumer = KafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=f"{topic}-group",
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             consumer_timeout_ms=20_000)
    try:
        consumer.subscribe([topic])
        record = next(iter(consumer))
        assert (record.value, record.partition, record.offset) == (b"smoke", 1, 0)
        consumer.commit()
        assert consumer.committed(TopicPartition(topic, 1)) == 1
    finally:
        consumer.close()
