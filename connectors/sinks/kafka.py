"""Kafka sink: each incident version as one JSON record (``jitsec.incident/1``) on a topic.

The record key is the incident id, so every version of one incident lands on one partition, in order,
and a compacted topic keeps the latest. ``send`` only spools (``SpooledSink``); the spool's thread
produces with ``acks=all`` and waits for the broker's acknowledgement before the incident leaves the
spool, so a broker that is down delays alerts, in order, and loses none. A record the broker refuses
for good (too large, invalid topic) is set aside in the spool's dead table.

A failed attempt is final inside the producer too: ``delivery_timeout_ms`` equals the attempt's
``timeout`` and the sink waits for the record's outcome, so no copy of it is still queued when the
spool retries. Only then is the producer replaced (a fresh one carries no state from the outage);
a producer whose record is somehow still pending is kept, so that copy goes out before the retry's,
never after newer incidents (kafka-python's ``close`` gives up on a flush that cannot finish and
leaves the record behind). One record is in flight at a time, so idempotence adds nothing and is off.

Spec for ``--alert``: ``kafka://HOST:PORT/TOPIC[?security=...&mechanism=...&username=...&ca=...]``,
the security parameters of ``connectors.kafka_security`` (password from ``JITSEC_KAFKA_PASSWORD``).
A refused login is a ``DeliveryError`` like an unreachable broker: the spool retries with backoff.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from jitsec.connectors.kafka_security import (
    SECURITY_PARAMETERS,
    AuthFailureWatch,
    KafkaAddressError,
    KafkaSecurity,
    kafka_password,
    parse_kafka_security,
)
from jitsec.connectors.sinks.base import SpooledSink
from jitsec.connectors.sinks.spool import Backoff, DeliveryError, PermanentDeliveryError
from kafka import KafkaProducer
from kafka.errors import (
    InvalidTopicError,
    KafkaError,
    MessageSizeTooLargeError,
    SaslAuthenticationFailedError,
)

from jitsec.kernel.records import Incident
from jitsec.kernel.schemas import INCIDENT

_PERMANENT = (InvalidTopicError, MessageSizeTooLargeError)
RECONNECT_BACKOFF_MAX_MS = 1000


def parse_kafka_sink_spec(spec: str) -> tuple[str, str]:
    """``kafka://HOST:PORT/TOPIC[?security...]`` → ``(bootstrap, topic)``; ``ValueError`` (a
    ``KafkaAddressError``) says what was expected."""
    bootstrap, topic, _ = parse_kafka_sink_address(spec)
    return bootstrap, topic


def parse_kafka_sink_address(spec: str) -> tuple[str, str, KafkaSecurity]:
    """``kafka://HOST:PORT/TOPIC[?security=...]`` → ``(bootstrap, topic, security)``."""
    expected = "expected kafka://HOST:PORT/TOPIC[?security=...&mechanism=...&username=...&ca=...]"
    parts = urlsplit(spec)
    try:
        port = parts.port
    except ValueError:
        port = None
    topic = parts.path.lstrip("/")
    if parts.scheme != "kafka" or not parts.hostname or port is None or not topic or "," in topic:
        raise KafkaAddressError(f"kafka sink {spec!r}: {expected}")
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = set(query) - SECURITY_PARAMETERS
    if unknown:
        raise KafkaAddressError(f"kafka sink {spec!r}: unknown parameter(s) {sorted(unknown)}; {expected}")
    return f"{parts.hostname}:{port}", topic, parse_kafka_security(query, spec)


class KafkaSink(SpooledSink):
    def __init__(self, bootstrap: str, topic: str, spool_dir: Path | str, *,
                 backoff: Backoff | None = None, timeout: float = 10.0,
                 security: KafkaSecurity | None = None, password: str | None = None) -> None:
        """``password`` defaults to ``JITSEC_KAFKA_PASSWORD`` when ``security`` asks for SASL;
        ``KafkaCredentialsError`` at once when neither gives one."""
        self.bootstrap = bootstrap
        self.topic = topic
        self.security = security or KafkaSecurity()
        self._password = password if password is not None else kafka_password(self.security)
        self._timeout = timeout
        self._producer: KafkaProducer | None = None
        super().__init__(f"kafka:{bootstrap}/{topic}", spool_dir, backoff=backoff)

    def deliver(self, incident: Incident) -> None:
        value = INCIDENT.to_json(incident).encode("utf-8")
        future: Any = None
        watch = AuthFailureWatch()
        try:
            with watch:
                producer = self._connect()
                future = producer.send(self.topic, key=incident.incident_id.encode("utf-8"), value=value)
                # the producer settles the record within its delivery timeout; the margin is for
                # the release that has none
                future.get(timeout=self._timeout * 2 + 1)
        except _PERMANENT as error:
            raise PermanentDeliveryError(f"kafka refused the incident: {type(error).__name__}") from None
        except KafkaError as error:
            if future is None or future.is_done:  # nothing of ours left in it
                self._drop_producer()
            if watch.failed or isinstance(error, SaslAuthenticationFailedError):
                raise DeliveryError(f"kafka refused the login of {self.security.username!r} "
                                    f"({self.security.mechanism}): auth") from None
            raise DeliveryError(f"kafka unreachable: {type(error).__name__}") from None

    def _connect(self) -> KafkaProducer:
        if self._producer is None:
            # reconnect at least once a second: kafka-python's default backoff grows to 30 s, which
            # would hold alerts back that long after the broker returns
            options: dict[str, Any] = {"acks": "all", "retries": 3, "linger_ms": 0,
                                       "request_timeout_ms": int(self._timeout * 1000),
                                       "max_block_ms": int(self._timeout * 1000),
                                       "reconnect_backoff_max_ms": RECONNECT_BACKOFF_MAX_MS}
            if "bootstrap_timeout_ms" in KafkaProducer.DEFAULT_CONFIG:
                options["bootstrap_timeout_ms"] = int(self._timeout * 1000)
            if "delivery_timeout_ms" in KafkaProducer.DEFAULT_CONFIG:  # >= request timeout + linger
                options["delivery_timeout_ms"] = int(self._timeout * 1000)
            if "enable_idempotence" in KafkaProducer.DEFAULT_CONFIG:
                options["enable_idempotence"] = False
            self._producer = KafkaProducer(bootstrap_servers=self.bootstrap, client_id="jitsec-alerts",
                                           **self.security.client_options(self._password), **options)
        return self._producer

    def _drop_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):  # a broken producer is being discarded anyway
                producer.close(timeout=1)

    def _close_receiver(self) -> None:
        self._drop_producer()


def build_kafka_sink(spec: str, spool_dir: Path | str) -> KafkaSink:
    bootstrap, topic, security = parse_kafka_sink_address(spec)
    return KafkaSink(bootstrap, topic, spool_dir, security=security)
