"""Kafka sink: each incident version as one JSON record (``jitsec.incident/1``) on a topic.

The record key is the incident id, so every version of one incident lands on one partition, in order,
and a compacted topic keeps the latest. ``send`` only spools (``SpooledSink``); the spool's thread
produces with ``acks=all`` and waits for the broker's acknowledgement before the incident leaves the
spool, so a broker that is down delays alerts, in order, and loses none. A record the broker refuses
for good (too large, invalid topic) is set aside in the spool's dead table.

Spec for ``--alert``: ``kafka://HOST:PORT/TOPIC``.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from kafka import KafkaProducer
from kafka.errors import InvalidTopicError, KafkaError, MessageSizeTooLargeError

from connectors.sinks.base import SpooledSink
from connectors.sinks.serialize import incident_to_json
from connectors.sinks.spool import Backoff, DeliveryError, PermanentDeliveryError
from scanner.model import Incident

_PERMANENT = (InvalidTopicError, MessageSizeTooLargeError)


def parse_kafka_sink_spec(spec: str) -> tuple[str, str]:
    """``kafka://HOST:PORT/TOPIC`` → ``(bootstrap, topic)``; ``ValueError`` says what was expected."""
    parts = urlsplit(spec)
    try:
        port = parts.port
    except ValueError:
        port = None
    topic = parts.path.lstrip("/")
    if parts.scheme != "kafka" or not parts.hostname or port is None or not topic or "," in topic:
        raise ValueError(f"kafka sink {spec!r}: expected kafka://HOST:PORT/TOPIC")
    return f"{parts.hostname}:{port}", topic


class KafkaSink(SpooledSink):
    def __init__(self, bootstrap: str, topic: str, spool_dir: Path | str, *,
                 backoff: Backoff | None = None, timeout: float = 10.0) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self._timeout = timeout
        self._producer: KafkaProducer | None = None
        super().__init__(f"kafka:{bootstrap}/{topic}", spool_dir, backoff=backoff)

    def deliver(self, incident: Incident) -> None:
        value = incident_to_json(incident).encode("utf-8")
        try:
            producer = self._connect()
            producer.send(self.topic, key=incident.incident_id.encode("utf-8"), value=value).get(
                timeout=self._timeout)
        except _PERMANENT as error:
            raise PermanentDeliveryError(f"kafka refused the incident: {type(error).__name__}") from None
        except KafkaError as error:
            self._drop_producer()
            raise DeliveryError(f"kafka unreachable: {type(error).__name__}") from None

    def _connect(self) -> KafkaProducer:
        if self._producer is None:
            options: dict[str, Any] = {"acks": "all", "retries": 3, "linger_ms": 0,
                                       "request_timeout_ms": int(self._timeout * 1000),
                                       "max_block_ms": int(self._timeout * 1000)}
            if "bootstrap_timeout_ms" in KafkaProducer.DEFAULT_CONFIG:
                options["bootstrap_timeout_ms"] = int(self._timeout * 1000)
            self._producer = KafkaProducer(bootstrap_servers=self.bootstrap, client_id="jitsec-alerts",
                                           **options)
        return self._producer

    def _drop_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):  # a broken producer is being discarded anyway
                producer.close(timeout=1)

    def _close_receiver(self) -> None:
        self._drop_producer()


def build_kafka_sink(spec: str, spool_dir: Path | str) -> KafkaSink:
    bootstrap, topic = parse_kafka_sink_spec(spec)
    return KafkaSink(bootstrap, topic, spool_dir)
