"""Fixtures for the Kafka engine tests: a user prefix per test (whatever a test leaves under it is
deleted afterwards: the cluster is shared), an engine built on the test Kafka's SASL listener with
the admin user, and topics holding one known record each."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
from confluent_kafka import Producer
from jitsec.broker.engines.kafka import KafkaEngine, KafkaEngineConfig
from jitsec.broker.engines.kafka_admin import KafkaAdmin

Sasl = tuple[str, str, str]


def admin_settings(kafka_sasl: Sasl) -> dict[str, str]:
    bootstrap, username, password = kafka_sasl
    return {"bootstrap.servers": bootstrap, "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN",
            "sasl.username": username, "sasl.password": password}


@pytest.fixture
def user_prefix(kafka_sasl: Sasl) -> Iterator[str]:
    prefix = f"jk{uuid.uuid4().hex[:6]}_"
    yield prefix
    admin = KafkaAdmin(admin_settings(kafka_sasl), timeout_seconds=30)
    try:
        for user in admin.users():
            if user.startswith(prefix):
                admin.delete_user(user)
    finally:
        admin.close()


@pytest.fixture
def make_engine(kafka_sasl: Sasl, user_prefix: str) -> Iterator[Callable[..., KafkaEngine]]:
    engines: list[KafkaEngine] = []
    bootstrap, username, password = kafka_sasl

    def build(admin_password: str = password, **options: object) -> KafkaEngine:
        settings: dict[str, object] = {"bootstrap_servers": bootstrap, "admin_username": username,
                                       "user_prefix": user_prefix, "scram_iterations": 4096}
        config = KafkaEngineConfig(**(settings | options))  # type: ignore[arg-type]
        engines.append(KafkaEngine(config, admin_password))
        return engines[-1]

    yield build
    for engine in engines:
        engine.close()


@pytest.fixture
def engine(make_engine: Callable[..., KafkaEngine]) -> KafkaEngine:
    return make_engine()


@pytest.fixture(scope="module")
def topics(kafka_sasl: Sasl) -> dict[str, str]:
    """Three fresh topics, each holding one record whose value is the topic's name."""
    names = {label: f"jitsec-kafka-engine-{label}-{uuid.uuid4().hex[:8]}"
             for label in ("mine", "other", "out")}
    producer = Producer(admin_settings(kafka_sasl))
    for name in names.values():
        producer.produce(name, name.encode())
    assert producer.flush(60) == 0
    return names
