"""A Kafka consumer group as a source: every record of one or more topics, at least once.

Address: ``kafka://HOST:PORT/TOPIC[,TOPIC]?group=G[&format=auto|json|text][&start=earliest|latest]``,
plus the security parameters of ``connectors.kafka_security`` (``security``, ``mechanism``,
``username``, ``ca``; the password comes from ``JITSEC_KAFKA_PASSWORD`` only) and ``client``
(``kafka-python``, this module; ``confluent``: ``kafka_confluent``, the same source over librdkafka).

Values are scanned as raw text, or, when they are JSON, one text per string field, located by
``KafkaOrigin(topic, partition, offset, field)``; each ends with a newline (added when missing) so the
scanner reports it at once. The records one poll returns for a partition are one chunk whose parts are
those texts (``runs``). Acknowledgements are cumulative: a record is *handled* once the chunk holding
its end was acknowledged; the group's offset for a partition is committed only up to the first record
not yet handled (manual commits, never auto-commit), periodically, on a rebalance and on ``close``. A
consumer killed mid-stream therefore re-reads what was not handled: nothing is lost, duplicates are
possible (the response folds them into one incident).

Poison records never stop the stream: binary values, invalid UTF-8, values larger than
``max_json_bytes`` and malformed JSON are counted in ``errors`` by kind and scanned as raw bytes
(large values in pieces of ``piece_bytes``, one stream, so nothing is skipped). A broker that goes
away is waited for: connecting and committing are retried with backoff, the client reconnects on its
own, and positions are kept in memory, so no record is skipped when it returns.

Threading: ``batches()`` (and ``chunks()``) runs the consumer on the caller's thread;
``acknowledge`` may be called from any thread; ``close`` may be called from any thread, waits for the
current poll (at most ``poll_timeout_ms``), commits what was acknowledged and leaves the group. It is
idempotent.
"""

from __future__ import annotations

import functools
import inspect
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

import orjson
from jitsec.connectors.kafka_security import (
    SECURITY_PARAMETERS,
    AuthFailureWatch,
    KafkaAddressError,
    KafkaSecurity,
    kafka_password,
    parse_kafka_security,
    single_parameter,
)
from jitsec.connectors.sources.handed_out import HandedOut
from jitsec.connectors.sources.json_fields import field_columns, field_text, string_fields
from jitsec.connectors.sources.runs import RunBuilder
from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import KafkaError, SaslAuthenticationFailedError
from kafka.structs import OffsetAndMetadata

from jitsec.kernel.ports import BatchReader, SourceErrors
from jitsec.kernel.records import Chunk, KafkaOrigin

ValueFormat = Literal["auto", "json", "text"]
StartAt = Literal["earliest", "latest"]
ClientName = Literal["kafka-python", "confluent"]
SCHEME = "kafka://"
DEFAULT_GROUP = "jitsec-scanner"
BINARY_PROBE = 8000


__all__ = ["KafkaAddress", "KafkaAddressError", "KafkaSource", "KafkaSourceSettings",
           "open_kafka_source", "parse_kafka_address"]


@dataclass(frozen=True, slots=True)
class KafkaAddress:
    bootstrap: str  # HOST:PORT
    topics: tuple[str, ...]
    group: str = DEFAULT_GROUP
    value_format: ValueFormat = "auto"
    start: StartAt = "earliest"
    security: KafkaSecurity = field(default_factory=KafkaSecurity)  # holds no secret
    client: ClientName = "kafka-python"  # confluent: librdkafka (the jitsec[confluent] extra)


def parse_kafka_address(address: str) -> KafkaAddress:
    """``kafka://HOST:PORT/TOPIC[,TOPIC]?group=G`` → ``KafkaAddress``; ``KafkaAddressError`` otherwise.

    ``group`` defaults to ``jitsec-scanner``; ``format`` (auto, json, text) and ``start`` (earliest,
    latest: where a group without committed offsets begins) are optional, and so are the security
    parameters (``connectors.kafka_security.parse_kafka_security``).
    """
    expected = "expected kafka://HOST:PORT/TOPIC[,TOPIC]?group=G"
    if not address.startswith(SCHEME):
        raise KafkaAddressError(f"{address!r}: not a kafka:// address; {expected}")
    parts = urlsplit(address)
    try:
        port = parts.port
    except ValueError as error:
        raise KafkaAddressError(f"{address!r}: bad port ({error}); {expected}") from None
    if not parts.hostname or port is None:
        raise KafkaAddressError(f"{address!r}: needs HOST:PORT; {expected}")
    topics = tuple(topic for topic in parts.path.lstrip("/").split(",") if topic)
    if not topics:
        raise KafkaAddressError(f"{address!r}: names no topic; {expected}")
    for topic in topics:
        if len(topic) > 249 or not all(c.isascii() and (c.isalnum() or c in "._-") for c in topic):
            raise KafkaAddressError(f"{address!r}: {topic!r} is not a valid topic name")
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = set(query) - {"group", "format", "start", "client"} - SECURITY_PARAMETERS
    if unknown:
        raise KafkaAddressError(f"{address!r}: unknown parameter(s) {sorted(unknown)}; {expected}")
    group = single_parameter(query, "group", DEFAULT_GROUP, address)
    if not group:
        raise KafkaAddressError(f"{address!r}: group is empty; {expected}")
    value_format = single_parameter(query, "format", "auto", address)
    if value_format not in ("auto", "json", "text"):
        raise KafkaAddressError(f"{address!r}: format must be auto, json or text")
    start = single_parameter(query, "start", "earliest", address)
    if start not in ("earliest", "latest"):
        raise KafkaAddressError(f"{address!r}: start must be earliest or latest")
    client = single_parameter(query, "client", "kafka-python", address)
    if client not in ("kafka-python", "confluent"):
        raise KafkaAddressError(f"{address!r}: client must be kafka-python or confluent")
    security = parse_kafka_security(query, address)
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return KafkaAddress(f"{host}:{port}", topics, group, value_format, start,  # type: ignore[arg-type]
                        security, client)  # type: ignore[arg-type]


Polled = dict[TopicPartition, tuple[list[int], list[bytes | None]]]  # per partition: offsets, values


@dataclass(frozen=True, slots=True)
class KafkaSourceSettings:
    """Tuning, with defaults that suit a daemon; tests shorten the timeouts."""

    max_json_bytes: int = 1 << 20  # larger values are not parsed, only scanned raw (and counted)
    piece_bytes: int = 1 << 20  # raw values are yielded in pieces of this size
    poll_timeout_ms: int = 200
    commit_interval_s: float = 1.0
    idle_exit_s: float = 10.0  # scan (not follow): give up waiting for an assignment after this
    retry_initial_s: float = 0.2
    retry_max_s: float = 5.0
    max_partition_fetch_bytes: int = 1 << 20
    max_poll_records: int = 500
    session_timeout_ms: int = 10_000
    connect_timeout_ms: int = 5_000  # how long one attempt to reach a broker (connect, commit) may block


# -- values → (field, bytes) ----------------------------------------------------------------------


RAW = object()  # what ``json_or_raw`` gives for a value to scan as it is


def value_fields(
    value: bytes | None, value_format: ValueFormat, max_json_bytes: int, report: Callable[[str, str], None]
) -> list[tuple[str | None, bytes]]:
    """What to scan in one record value: ``(field path, bytes)`` per JSON string, or ``(None, raw)``.

    ``report(kind, detail)`` is told about poison values (binary, invalid_utf8, oversized,
    malformed_json); they are still returned raw so that the scanner sees every byte.
    """
    if not value:
        return [(None, b"")]
    document, problem = json_or_raw(value, value_format, max_json_bytes)
    if problem is not None:
        report(*problem)
    if document is RAW:
        return [(None, value)]
    fields: list[tuple[str | None, bytes]] = [(path, field_text(path, text))
                                              for path, text in string_fields(document)]
    return fields or [(None, b"")]


def json_or_raw(  # noqa: PLR0911 - one early exit per kind of value, cheapest test first
    value: bytes, value_format: ValueFormat, max_json_bytes: int, *, may_have_nul: bool = True,
    may_be_non_ascii: bool = True,
) -> tuple[Any, tuple[str, str] | None]:
    """A non-empty value's parsed JSON document, or ``RAW`` when it is to be scanned as it is, with the
    poison found on the way as ``(kind, detail)`` (binary, invalid_utf8, oversized, malformed_json).

    ``may_have_nul`` / ``may_be_non_ascii`` False say the caller checked a whole batch at once (no NUL
    byte, all ASCII), which skips those checks here. JSON is parsed by orjson, and by the standard
    library when orjson refuses it (which the standard library may accept: NaN, lone surrogates, UTF-16)
    or to tell the kind of the problem, so the result is the standard library's either way."""
    if may_have_nul and BINARY_PROBE and b"\x00" in value[:BINARY_PROBE]:
        return RAW, ("binary", f"{len(value)} bytes with NUL")
    head = value[0]
    if head in _JSON_START:
        looks_json = True
    elif head in _SPACE:
        looks_json = value.lstrip()[:1] in (b"{", b"[")
    else:
        looks_json = False
    if value_format == "text" or (value_format == "auto" and not looks_json):
        if may_be_non_ascii and not value.isascii() and not _is_utf8(value):
            return RAW, ("invalid_utf8", f"{len(value)} bytes")
        return RAW, None
    if len(value) > max_json_bytes:
        return RAW, ("oversized", f"{len(value)} bytes, over {max_json_bytes}: scanned raw")
    try:
        return orjson.loads(value), None
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(value), None
    except UnicodeDecodeError:
        return RAW, ("invalid_utf8", f"{len(value)} bytes")
    except (ValueError, RecursionError) as error:
        return RAW, ("malformed_json", type(error).__name__)


_JSON_START = frozenset(b"{[")
_SPACE = frozenset(b" \t\n\r\x0b\x0c")
_JSON_OR_SPACE = _JSON_START | _SPACE


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# -- acknowledgement bookkeeping ----------------------------------------------------------------


# One batch handed out: per record, the index of its last chunk, its partition and the offset after it.
_Yielded = HandedOut[tuple[int, TopicPartition, int]]


class KafkaSource(BatchReader):
    """Implements ``jitsec.kernel.ports.Source`` over a kafka-python consumer group."""

    def __init__(self, address: KafkaAddress, *, follow: bool,
                 settings: KafkaSourceSettings | None = None,
                 clock: Callable[[], float] = time.monotonic, password: str | None = None) -> None:
        """``password`` defaults to ``JITSEC_KAFKA_PASSWORD`` when the address asks for SASL;
        ``KafkaCredentialsError`` at once when neither gives one."""
        self.address = address
        self._password = password if password is not None else kafka_password(address.security)
        self.follow = follow
        self.settings = settings or KafkaSourceSettings()
        self.errors = SourceErrors()
        self.records_read = 0
        self.bytes_read = 0
        self._clock = clock
        self._consumer: Any = None  # the client's consumer (kafka-python's here)
        self._lock = threading.RLock()  # guards the consumer (kafka-python's is not thread-safe)
        self._track_lock = threading.Lock()  # guards the three below
        self._unacked: deque[_Yielded] = deque()  # batches handed out, not wholly acknowledged
        self._handled: dict[TopicPartition, int] = {}  # next offset to commit: all below are handled
        self._committed: dict[TopicPartition, int] = {}
        self._last_commit = clock()
        self._closed = threading.Event()
        self._lag: int | None = None
        self._lag_at = clock()
        self._broker_away = False  # the cluster was unreachable at the last check
        self._broker_checked = clock()

    # -- Source protocol ----------------------------------------------------------------------------

    def chunks(self) -> Iterator[Chunk]:
        for batch in self.batches():
            for chunk in batch:
                if self._closed.is_set():
                    return  # not acknowledged, so not committed: the next consumer reads it
                yield chunk

    def batches(self) -> Iterator[list[Chunk]]:
        """What one poll returned, as one list: per partition, its records joined in one chunk (each
        value, or each JSON string field, a ``Part``: see ``runs``), more only around values larger
        than ``piece_bytes``."""
        consumer = self._connect()
        if consumer is None:
            return
        idle_since = self._clock()
        while not self._closed.is_set():
            polled = self._poll(consumer)
            if polled is None:
                return
            if not polled:
                if not self.follow and self._finished(consumer, idle_since):
                    return
                continue
            idle_since = self._clock()
            chunks, marks = self._batch(polled)
            with self._track_lock:
                self._unacked.append(_Yielded(chunks, marks))
            yield chunks

    def _batch(self, polled: Polled) -> tuple[list[Chunk], list[tuple[int, TopicPartition, int]]]:
        """The chunks of one poll, and per record the index of the chunk that holds its end."""
        value_format, max_json_bytes = self.address.value_format, self.settings.max_json_bytes
        builder = RunBuilder(self.settings.piece_bytes, self._clock())
        marks: list[tuple[int, TopicPartition, int]] = []
        for tp, (record_offsets, record_values) in polled.items():
            builder.group(KafkaOrigin(tp.topic, tp.partition, record_offsets[0]))
            first = len(builder.ends)
            present = [value for value in record_values if value]
            joined = b"\n".join(present)  # with a separator, so valid UTF-8 says each value is
            self.records_read += len(record_offsets)
            self.bytes_read += len(joined) - max(0, len(present) - 1)
            may_have_nul = b"\x00" in joined
            may_be_non_ascii = not joined.isascii() and not _is_utf8(joined)
            text_fast = value_format != "json" and not may_have_nul and not may_be_non_ascii
            offsets: list[int] = []  # plain text records in a row, added together
            values: list[bytes] = []
            for offset, value in zip(record_offsets, record_values, strict=True):
                if text_fast and value and (value_format == "text" or value[0] not in _JSON_OR_SPACE):
                    offsets.append(offset)
                    values.append(value)
                    continue
                if values:
                    builder.values(offsets, values)
                    offsets, values = [], []
                if not value:  # a tombstone or an empty value: nothing to scan
                    builder.record(offset)
                    continue
                document, problem = json_or_raw(value, value_format, max_json_bytes,
                                                may_have_nul=may_have_nul, may_be_non_ascii=may_be_non_ascii)
                if problem is not None:
                    self.errors.record(problem[0], f"{tp.topic}/{tp.partition}@{offset}: {problem[1]}")
                if document is RAW:
                    builder.value(offset, value)
                else:
                    builder.fields(offset, *field_columns(document))
            if values:
                builder.values(offsets, values)
            afters = [offset + 1 for offset in record_offsets]
            assert len(builder.ends) - first == len(afters)
            marks.extend(zip(builder.ends[first:], repeat(tp), afters, strict=False))
        return builder.finish(), marks

    def acknowledge(self, chunk: Chunk) -> None:
        """``chunk`` and every chunk handed out before it are handled: each record whose chunks all are
        may be committed. A chunk not pending (acknowledged already, or handed out before a rebalance
        took its partition away) changes nothing."""
        if not isinstance(chunk.origin, KafkaOrigin):
            raise TypeError(f"not a chunk of this source: {type(chunk.origin).__name__}")
        with self._track_lock:
            unacked = self._unacked
            found = next(((depth, batch, position) for depth, batch in enumerate(unacked)
                          if (position := batch.find(chunk)) is not None), None)
            if found is None:
                return
            depth, batch, position = found
            for _ in range(depth):  # older batches are wholly handled
                self._apply(unacked.popleft(), None)
            self._apply(batch, position)
            if position == len(batch.chunks) - 1:
                unacked.popleft()

    def _apply(self, batch: _Yielded, position: int | None) -> None:
        """Records of ``batch`` handled through its chunk at ``position`` (None: all of them)."""
        marks, handled, index = batch.marks, self._handled, batch.applied
        end = len(marks)
        while index < end and (position is None or marks[index][0] <= position):
            _, tp, after = marks[index]
            handled[tp] = after
            index += 1
        batch.applied = index
        batch.position = len(batch.chunks) - 1 if position is None else position

    def _forget(self, partitions: set[TopicPartition]) -> None:
        """Partitions no longer ours (or ours anew): their records in flight are read again by
        whoever owns them, from the last commit; their acknowledgements change nothing."""
        with self._track_lock:
            for tp in partitions:
                self._handled.pop(tp, None)
                self._committed.pop(tp, None)
            for batch in self._unacked:
                rest = batch.marks[batch.applied:]
                if any(tp in partitions for _, tp, _ in rest):
                    batch.marks = batch.marks[:batch.applied] + [m for m in rest if m[1] not in partitions]

    def lag(self) -> int | None:
        """Records on the assigned partitions not yet handed out, as of the last poll that looked
        (every ``commit_interval_s`` while records flow, every poll when idle); None before the first
        fetch. Read from the consumer's own fetch state, so a metrics scrape costs no
        broker round trip and never waits on the polling thread."""
        return self._lag

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            consumer, self._consumer = self._consumer, None
            if consumer is None:
                return
            self._commit(consumer, force=True)
            try:
                self._close_consumer(consumer)
            except Exception as error:  # leaving the group is best effort; offsets are committed
                self.errors.record("close", type(error).__name__)

    # -- internals ------------------------------------------------------------------------------------

    def _connect(self) -> KafkaConsumer | None:
        """A subscribed consumer, retrying while the broker cannot be reached; None once closed."""
        attempt = 0
        while not self._closed.is_set():
            watch = AuthFailureWatch()
            try:
                with watch:
                    consumer = KafkaConsumer(
                        **self._version_specific(),
                        **self.address.security.client_options(self._password),
                        bootstrap_servers=self.address.bootstrap,
                        group_id=self.address.group,
                        client_id=f"jitsec-{self.address.group}",
                        enable_auto_commit=False,
                        auto_offset_reset=self.address.start,
                        max_partition_fetch_bytes=self.settings.max_partition_fetch_bytes,
                        max_poll_records=self.settings.max_poll_records,
                        session_timeout_ms=self.settings.session_timeout_ms,
                        heartbeat_interval_ms=max(1000, self.settings.session_timeout_ms // 4),
                        reconnect_backoff_max_ms=int(self.settings.retry_max_s * 1000),
                    )
                consumer.subscribe(list(self.address.topics), listener=_Rebalance(self, consumer))
            except KafkaError as error:
                attempt += 1
                self._record_connect_failure(error, refused=watch.failed)
                self._closed.wait(self._backoff(attempt))
                continue
            with self._lock:
                if self._closed.is_set():
                    consumer.close(autocommit=False)
                    return None
                self._consumer = consumer
            return consumer
        return None

    def _record_connect_failure(self, error: KafkaError, *, refused: bool) -> None:
        """``auth`` when the broker refused our login (wrong password, unknown user or mechanism),
        else ``connect``; neither detail can hold the password (type names and the address only)."""
        security = self.address.security
        if refused or isinstance(error, SaslAuthenticationFailedError):
            self.errors.record("auth", f"{self.address.bootstrap}: {security.mechanism} login of "
                                       f"{security.username!r} refused ({type(error).__name__})")
        else:
            self.errors.record("connect", f"{self.address.bootstrap}: {type(error).__name__}")

    def _version_specific(self) -> dict[str, Any]:
        """Options only newer kafka-python releases know (older ones reject unknown options)."""
        if "bootstrap_timeout_ms" not in KafkaConsumer.DEFAULT_CONFIG:
            return {}
        return {"bootstrap_timeout_ms": self.settings.connect_timeout_ms}

    def _is_current(self, consumer: Any) -> bool:
        """Whether ``consumer`` is still this source's (False once the source was closed). A method,
        not an inline ``is`` test, so that mypy does not narrow ``consumer`` to ``self._consumer``'s
        type (the clients are untyped: an ``Any`` compared by identity)."""
        return self._consumer is consumer

    def _poll(self, consumer: Any) -> Polled | None:
        """One poll (and a due commit) under the lock; None when the source was closed meanwhile."""
        with self._lock:
            if not self._is_current(consumer):
                return None
            self._commit(consumer, force=False)
            try:
                polled = self._fetch(consumer)
                now = self._clock()
                if not polled or self._lag is None or now - self._lag_at >= self.settings.commit_interval_s:
                    self._lag, self._lag_at = self._consumer_lag(consumer), now  # not on every poll
                if not polled:
                    self._watch_broker(consumer)
                return polled
            except self._client_errors as error:
                self.errors.record("fetch", type(error).__name__)
        self._closed.wait(self.settings.retry_initial_s)
        return {}

    # -- what depends on the client (a subclass replaces these for another) ----------------------------

    _client_errors: tuple[type[Exception], ...] = (KafkaError,)

    def _fetch(self, consumer: KafkaConsumer) -> Polled:
        """One poll of the client: per partition, the offsets and values of its records."""
        return {tp: ([record.offset for record in records], [record.value for record in records])
                for tp, records in consumer.poll(timeout_ms=self.settings.poll_timeout_ms).items()}

    def _consumer_lag(self, consumer: KafkaConsumer) -> int | None:
        return _lag(consumer)

    def _close_consumer(self, consumer: KafkaConsumer) -> None:
        consumer.close(autocommit=False)

    def _watch_broker(self, consumer: KafkaConsumer) -> None:
        """Counts the cluster going away as one ``connection`` error per outage. kafka-python's poll
        retries by itself and only returns nothing meanwhile, so an outage would otherwise be
        silent; its ``connection-count`` metric (local state, no round trip) is 0 while no broker
        answers. Checked at most once per ``commit_interval_s``, only on polls that return nothing."""
        now = self._clock()
        if now - self._broker_checked < self.settings.commit_interval_s:
            return
        self._broker_checked = now
        metrics = consumer.metrics() or {}
        connections = metrics.get("consumer-metrics", {}).get("connection-count")
        if connections is None:  # metrics disabled or renamed: commits still report failures
            return
        away = connections == 0
        if away and not self._broker_away:
            self.errors.record("connection", f"{self.address.bootstrap}: no broker of the cluster answers")
        self._broker_away = away

    def _bounded(self, method: Callable[..., Any]) -> dict[str, int]:
        """``timeout_ms`` for a consumer call that waits on the broker, where the release takes one."""
        return {"timeout_ms": self.settings.connect_timeout_ms} if _takes_timeout(method) else {}

    def _finished(self, consumer: KafkaConsumer, idle_since: float) -> bool:
        """For a scan (not follow): every assigned partition is read to its end, or nobody assigns us."""
        with self._lock:
            if not self._is_current(consumer):
                return True
            assigned = consumer.assignment()
            if not assigned:
                return self._clock() - idle_since > self.settings.idle_exit_s
            try:
                ends = consumer.end_offsets(list(assigned), **self._bounded(KafkaConsumer.end_offsets))
                return all(consumer.position(tp) >= ends[tp] for tp in assigned)
            except KafkaError as error:
                self.errors.record("fetch", type(error).__name__)
                return False

    def _commit(self, consumer: KafkaConsumer, *, force: bool,
                only: set[TopicPartition] | None = None) -> None:
        """Commit every partition's handled position that moved; failures are retried next time."""
        if not force and self._clock() - self._last_commit < self.settings.commit_interval_s:
            return
        with self._track_lock:
            offsets = {tp: after for tp, after in self._handled.items()
                       if after != self._committed.get(tp) and (only is None or tp in only)}
        self._last_commit = self._clock()
        if not offsets:
            return
        try:
            self._send_commit(consumer, offsets)
        except Exception as error:  # broker away or group rebalancing: keep them for the next try
            self.errors.record("commit", type(error).__name__)
            return
        for tp, after in offsets.items():
            self._committed[tp] = after

    def _send_commit(self, consumer: KafkaConsumer, offsets: dict[TopicPartition, int]) -> None:
        """Commits ``offsets`` (the next offset to read per partition); raises when it failed."""
        # bounded: kafka-python waits 30 s (older releases: forever) for a broker that is away
        consumer.commit(offsets={tp: OffsetAndMetadata(after, "", -1) for tp, after in offsets.items()},
                        **self._bounded(KafkaConsumer.commit))

    def _on_revoked(self, consumer: KafkaConsumer, revoked: set[TopicPartition]) -> None:
        self._commit(consumer, force=True, only=set(revoked))
        self._forget(revoked)

    def _backoff(self, attempt: int) -> float:
        return min(self.settings.retry_max_s, self.settings.retry_initial_s * 2 ** min(attempt, 16))


@functools.cache
def _takes_timeout(method: Callable[..., Any]) -> bool:
    return "timeout_ms" in inspect.signature(method).parameters


def _lag(consumer: KafkaConsumer) -> int | None:
    """Sum over assigned partitions of last known high-water mark minus position (local state only)."""
    total: int | None = None
    for partition in consumer.assignment():
        highwater = consumer.highwater(partition)
        if highwater is not None:
            total = (total or 0) + max(0, highwater - consumer.position(partition))
    return total


class _Rebalance(ConsumerRebalanceListener):
    """Commits what was handled before partitions move to another group member (called inside poll)."""

    def __init__(self, source: KafkaSource, consumer: KafkaConsumer) -> None:
        self._source = source
        self._consumer = consumer

    def on_partitions_revoked(self, revoked: Any) -> None:
        self._source._on_revoked(self._consumer, set(revoked))

    def on_partitions_assigned(self, assigned: Any) -> None:
        self._source._forget(set(assigned))


def open_kafka_source(address: str, *, follow: bool) -> KafkaSource:
    """The source a ``kafka://`` address names (``jitsec scan`` / ``watch``); connects on ``chunks()``.
    ``client=confluent`` is opened by ``kafka_confluent.open_kafka_source`` (``connectors.address``
    picks it), so this module never needs confluent-kafka."""
    parsed = parse_kafka_address(address)
    if parsed.client != "kafka-python":
        raise KafkaAddressError(f"{address!r}: client={parsed.client} is opened by "
                                "jitsec.connectors.sources.kafka_confluent")
    return KafkaSource(parsed, follow=follow)
