"""What a lease holder sees: one read or one write through a fresh (or a kept) SCRAM-SHA-512
connection to the test Kafka's SASL listener, answered as an ``Outcome`` (read, denied, login refused).

confluent-kafka on the client side because it reports a failed login as such (``_AUTHENTICATION``)
instead of retrying until a timeout, and a refused topic or group with Kafka's own error name.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

LOGIN_REFUSED = "_AUTHENTICATION"
WAIT_SECONDS = 20.0


@dataclass(frozen=True, slots=True)
class Outcome:
    """``value`` when a record was read or written, else ``error``: Kafka's error name."""

    value: bytes | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.value is not None


@dataclass
class LeaseClient:
    """One lease's user on the SASL listener; ``consumer`` keeps a connection open between reads."""

    bootstrap: str
    username: str
    password: str
    group: str = "jitsec-kafka-test"
    errors: list[KafkaError] = field(default_factory=list)
    _consumer: Consumer | None = None

    def settings(self) -> dict[str, Any]:
        return {"bootstrap.servers": self.bootstrap, "security.protocol": "SASL_PLAINTEXT",
                "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": self.username,
                "sasl.password": self.password, "error_cb": self.errors.append,
                "log_level": 0}  # refusals are asserted on, not printed

    def read_first(self, topic: str, *, keep: bool = False) -> Outcome:
        """The first record of partition 0 of ``topic``; with ``keep``, through the kept connection."""
        consumer = self._consumer if keep and self._consumer is not None else self._new_consumer()
        if keep:
            self._consumer = consumer
        self.errors.clear()
        try:
            # the topic's metadata first: a topic the user may not describe is answered with an error
            # here, while an assignment to it would only wait
            deadline = time.monotonic() + WAIT_SECONDS
            refused = self._describe(consumer, topic, deadline)
            if refused is not None:
                return refused
            consumer.assign([TopicPartition(topic, 0, 0)])
            return self._first_message(consumer, deadline)
        finally:
            consumer.unassign()
            if not keep:
                consumer.close()

    def write(self, topic: str, value: bytes) -> Outcome:
        """Produce one record through a fresh connection and wait for its acknowledgement."""
        self.errors.clear()
        reports: list[KafkaError | None] = []
        producer = Producer(self.settings() | {"message.timeout.ms": int(WAIT_SECONDS * 1000)})
        producer.produce(topic, value, on_delivery=lambda error, _message: reports.append(error))
        deadline = time.monotonic() + WAIT_SECONDS
        while not reports and not self.errors and time.monotonic() < deadline:
            producer.poll(0.25)
        if reports and reports[0] is None:
            return Outcome(value=value)
        if self.errors:
            return Outcome(error=self.errors[0].name())
        return Outcome(error=reports[0].name() if reports and reports[0] else "no answer")

    def join(self, topic: str) -> Outcome:
        """Join this client's group on ``topic`` and read: the operation a group ACL governs (an
        assigned read at an explicit offset needs no group rights at all)."""
        consumer = Consumer(self.settings() | {"group.id": self.group, "enable.auto.commit": False,
                                               "auto.offset.reset": "earliest"})
        self.errors.clear()
        consumer.subscribe([topic])
        deadline = time.monotonic() + WAIT_SECONDS
        try:
            return self._first_message(consumer, deadline)
        finally:
            consumer.close()

    def _first_message(self, consumer: Consumer, deadline: float) -> Outcome:
        """The first record or refusal ``consumer`` polls before ``deadline``."""
        while time.monotonic() < deadline:
            message = consumer.poll(0.25)
            if message is not None and message.error() is not None:
                return Outcome(error=message.error().name())
            if message is not None:
                return Outcome(value=message.value())
            if self.errors:
                return Outcome(error=self.errors[0].name())
        return Outcome(error="no answer")

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None

    def _describe(self, consumer: Consumer, topic: str, deadline: float) -> Outcome | None:
        """None once the topic's metadata came back without an error, else what went wrong (a failed
        login reaches ``error_cb``, served by ``poll``, while the metadata request only times out)."""
        while time.monotonic() < deadline:
            try:
                described = consumer.list_topics(topic, timeout=1.0).topics.get(topic)
            except KafkaException:
                consumer.poll(0.1)
                if self.errors:
                    return Outcome(error=self.errors[0].name())
                continue
            if described is not None and described.error is not None:
                return Outcome(error=described.error.name())
            return None
        return Outcome(error="no answer")

    def _new_consumer(self) -> Consumer:
        return Consumer(self.settings() | {"group.id": self.group, "enable.auto.commit": False})
