"""The Kafka source over librdkafka (confluent-kafka), for ``kafka://…?client=confluent``.

An optional extra (``pip install 'jitsec[confluent]'``): librdkafka fetches and decodes records in C on
its own threads, about three times kafka-python's raw consume rate on the benchmark topic, which
leaves the scanner most of the process. Everything but the client is ``KafkaSource``'s: the address,
the chunks (one per poll and partition), the cumulative acknowledgements, commits of handled records
only (manual, never automatic), commits before partitions are revoked and on ``close``, errors counted
by kind. Differences, by librdkafka's design: it connects in the background, so an unreachable broker
or a refused login shows as ``connection`` / ``auth`` errors reported by the client (retried by it)
rather than as failed attempts to connect; a commit waits as long as librdkafka's own request
timeouts allow.
"""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException
from confluent_kafka import TopicPartition as ConfluentPartition
from jitsec.connectors.kafka_security import KafkaSecurity
from jitsec.connectors.sources.kafka import KafkaAddressError, KafkaSource, Polled, parse_kafka_address
from kafka import TopicPartition

_DOWN = {KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT}


def client_config(security: KafkaSecurity, password: str | None) -> dict[str, Any]:
    """librdkafka's settings for ``security`` (the same parameters as for kafka-python)."""
    config: dict[str, Any] = {"security.protocol": security.protocol.lower()}
    if security.uses_sasl:
        config.update({"sasl.mechanism": security.mechanism, "sasl.username": security.username,
                       "sasl.password": password})
    if security.uses_tls:
        config["ssl.endpoint.identification.algorithm"] = "https"
        if security.ca_file is not None:
            config["ssl.ca.location"] = security.ca_file
    return config


class ConfluentKafkaSource(KafkaSource):
    """``KafkaSource`` with librdkafka as its client (see the module docstring)."""

    _client_errors = (KafkaException,)

    def _connect(self) -> Any:
        """A subscribed consumer; librdkafka connects (and reconnects) on its own, in the background."""
        if self._closed.is_set():
            return None
        settings = self.settings
        consumer = Consumer({
            **client_config(self.address.security, self._password),
            "bootstrap.servers": self.address.bootstrap,
            "group.id": self.address.group,
            "client.id": f"jitsec-{self.address.group}",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": self.address.start,
            "max.partition.fetch.bytes": settings.max_partition_fetch_bytes,
            "session.timeout.ms": settings.session_timeout_ms,
            "heartbeat.interval.ms": max(1000, settings.session_timeout_ms // 4),
            "reconnect.backoff.max.ms": int(settings.retry_max_s * 1000),
            "socket.connection.setup.timeout.ms": max(1000, settings.connect_timeout_ms),
            "error_cb": self._client_error,
            "logger": logging.getLogger("jitsec.kafka.librdkafka"),
        })
        consumer.subscribe(list(self.address.topics), on_assign=self._assigned, on_revoke=self._revoked,
                           on_lost=self._revoked)
        with self._lock:
            if self._closed.is_set():
                consumer.close()
                return None
            self._consumer = consumer
        return consumer

    def _fetch(self, consumer: Any) -> Polled:
        polled: Polled = {}
        for message in consumer.consume(self.settings.max_poll_records, self.settings.poll_timeout_ms / 1000):
            error = message.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    self.errors.record("fetch", error.name())
                continue
            tp = TopicPartition(message.topic(), message.partition())
            columns = polled.get(tp)
            if columns is None:
                columns = polled[tp] = ([], [])
            columns[0].append(message.offset())
            columns[1].append(message.value())
        if polled:
            self._broker_away = False  # records come: the next outage is counted again
        return polled

    def _consumer_lag(self, consumer: Any) -> int | None:
        """From librdkafka's cached high watermarks and positions (no broker round trip)."""
        assigned = consumer.assignment()
        total: int | None = None
        for position in consumer.position(assigned):
            _low, high = consumer.get_watermark_offsets(position, cached=True)
            if high >= 0 and position.offset >= 0:
                total = (total or 0) + max(0, high - position.offset)
        return total

    def _watch_broker(self, consumer: Any) -> None:
        """Outages are reported by ``_client_error`` as they happen."""

    def _finished(self, consumer: Any, idle_since: float) -> bool:
        """For a scan (not follow): every assigned partition is read to its end, or nobody assigns us."""
        with self._lock:
            if self._consumer is not consumer:
                return True
            assigned = consumer.assignment()
            if not assigned:
                return self._clock() - idle_since > self.settings.idle_exit_s
            timeout = self.settings.connect_timeout_ms / 1000
            try:
                positions = consumer.position(assigned)
                committed = {(p.topic, p.partition): p.offset for p in consumer.committed(assigned, timeout)}
                for position in positions:
                    low, high = consumer.get_watermark_offsets(position, timeout=timeout, cached=False)
                    at = position.offset  # negative until the first fetch: where it starts then
                    if at < 0:
                        at = committed.get((position.topic, position.partition), -1)
                    if at < 0:
                        at = high if self.address.start == "latest" else low
                    if at < high:
                        return False
                return True
            except KafkaException as error:
                self.errors.record("fetch", type(error).__name__)
                return False

    def _send_commit(self, consumer: Any, offsets: dict[TopicPartition, int]) -> None:
        consumer.commit(offsets=[ConfluentPartition(tp.topic, tp.partition, after)
                                 for tp, after in offsets.items()], asynchronous=False)

    def _close_consumer(self, consumer: Any) -> None:
        consumer.close()

    # -- librdkafka's callbacks (on the polling thread, inside consume) ----------------------------

    def _assigned(self, consumer: Any, partitions: list[Any]) -> None:
        self._forget({TopicPartition(p.topic, p.partition) for p in partitions})

    def _revoked(self, consumer: Any, partitions: list[Any]) -> None:
        self._on_revoked(consumer, {TopicPartition(p.topic, p.partition) for p in partitions})

    def _client_error(self, error: KafkaError) -> None:
        """librdkafka's own errors: a refused login is ``auth``, no broker reachable ``connection``
        (once per outage); the message names the address and the user, never the password."""
        if error.code() == KafkaError._AUTHENTICATION:
            security = self.address.security
            self.errors.record("auth", f"{self.address.bootstrap}: {security.mechanism} login of "
                                       f"{security.username!r} refused ({error.name()})")
            return
        if error.code() in _DOWN:
            if not self._broker_away:
                self._broker_away = True
                self.errors.record("connection", f"{self.address.bootstrap}: no broker of the cluster "
                                                 f"answers ({error.name()})")
            return
        self.errors.record("client", error.name())


def open_kafka_source(address: str, *, follow: bool) -> ConfluentKafkaSource:
    """The source a ``kafka://…?client=confluent`` address names; connects on ``chunks()``."""
    parsed = parse_kafka_address(address)
    if parsed.client != "confluent":
        raise KafkaAddressError(f"{address!r}: not a client=confluent address")
    return ConfluentKafkaSource(parsed, follow=follow)
