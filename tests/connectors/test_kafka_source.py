"""KafkaSource against the real broker started by scripts/services: origins, poison records, at-least-once
across a killed consumer, partition sharing in one group, a broker that is not there at first."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from jitsec.connectors.sources.kafka import KafkaSource, KafkaSourceSettings, parse_kafka_address

from jitsec.kernel.records import Chunk, KafkaOrigin
from jitsec.testing import wait_until

pytestmark = pytest.mark.kafka

FAST = KafkaSourceSettings(poll_timeout_ms=100, commit_interval_s=0.2, idle_exit_s=8.0,
                           retry_initial_s=0.1, retry_max_s=0.5, session_timeout_ms=6000,
                           connect_timeout_ms=1000)
REPO = Path(__file__).resolve().parents[2]


def _source(bootstrap: str, topic: str, group: str, *, follow: bool = False,
            settings: KafkaSourceSettings = FAST) -> KafkaSource:
    return KafkaSource(parse_kafka_address(f"kafka://{bootstrap}/{topic}?group={group}"),
                       follow=follow, settings=settings)


def _drain(source: KafkaSource) -> list[Chunk]:
    """Every record (or JSON field) read, as a chunk of its own (``split_parts``), each chunk
    acknowledged as it comes."""
    parts = []
    try:
        for chunk in source.chunks():
            parts.extend(chunk.split_parts())
            source.acknowledge(chunk)
    finally:
        source.close()
    return parts


def test_text_and_json_records_become_chunks_located_by_topic_partition_offset_field(
        kafka_bootstrap: str, kafka_tools) -> None:
    topic = kafka_tools.topic(1)
    kafka_tools.produce(topic, [
        b"user=alice token=planted-one",
        json.dumps({"level": "info", "ctx": {"headers": ["Authorization: planted-two"]}, "n": 1}).encode(),
    ])
    chunks = _drain(_source(kafka_bootstrap, topic, "g-origins"))
    located = [(c.origin, c.data) for c in chunks]
    assert located == [
        (KafkaOrigin(topic, 0, 0, None), b"user=alice token=planted-one\n"),  # terminated: scanned at once
        (KafkaOrigin(topic, 0, 1, "level"), b"level: info\n"),  # a field is read with its own key
        (KafkaOrigin(topic, 0, 1, "ctx.headers[0]"), b"headers: Authorization: planted-two\n"),
    ]
    assert all(c.read_at is not None for c in chunks)
    assert kafka_tools.committed(topic, "g-origins", 1) == [2]  # clean shutdown committed


def test_poison_records_are_counted_scanned_raw_and_never_stop_the_stream(
        kafka_bootstrap: str, kafka_tools) -> None:
    topic = kafka_tools.topic(1)
    big = (b"x" * 1023 + b"\n") * (50 * 1024) + b"tail-marker"  # 50 MiB and a bit
    values = [b"\x00\x01\x02binary", b"caf\xe9 not utf-8", b'{"broken": ', big, b"after-the-poison"]
    kafka_tools.produce(topic, values)
    source = _source(kafka_bootstrap, topic, "g-poison")
    chunks = _drain(source)
    by_offset: dict[int, bytes] = {}
    for chunk in chunks:
        assert isinstance(chunk.origin, KafkaOrigin)
        by_offset[chunk.origin.offset] = by_offset.get(chunk.origin.offset, b"") + chunk.data
    assert by_offset == {offset: value + b"\n" for offset, value in enumerate(values)}
    big_pieces = [c for c in chunks if c.origin == KafkaOrigin(topic, 0, 3, None)]
    assert len(big_pieces) > 1
    assert [c.offset for c in big_pieces] == sorted(c.offset for c in big_pieces)
    assert source.errors.counts == {"binary": 1, "invalid_utf8": 1, "malformed_json": 1}
    assert kafka_tools.committed(topic, "g-poison", 1) == [5]


def test_unacknowledged_records_are_not_committed(kafka_bootstrap: str, kafka_tools) -> None:
    topic = kafka_tools.topic(1)
    kafka_tools.produce(topic, [json.dumps({"a": "x", "b": "y"}).encode(), b"second", b"third"])
    source = _source(kafka_bootstrap, topic, "g-partial")
    for _chunk in source.chunks():
        break  # read, never acknowledged
    source.close()
    assert kafka_tools.committed(topic, "g-partial", 1) == [None]

    source = _source(kafka_bootstrap, topic, "g-partial")
    for chunk in source.chunks():
        assert [part.origin for part in chunk.split_parts()] == [
            KafkaOrigin(topic, 0, 0, "a"), KafkaOrigin(topic, 0, 0, "b"), KafkaOrigin(topic, 0, 1, None),
            KafkaOrigin(topic, 0, 2, None)]  # one poll: one chunk
        source.acknowledge(chunk)
        break
    source.close()
    assert kafka_tools.committed(topic, "g-partial", 1) == [3]


def test_a_record_in_pieces_is_handled_once_its_last_piece_is(kafka_bootstrap: str, kafka_tools) -> None:
    topic = kafka_tools.topic(1)
    kafka_tools.produce(topic, [b"first", b"y" * 200, b"third"])
    settings = dataclasses.replace(FAST, piece_bytes=64, commit_interval_s=3600.0)
    source = _source(kafka_bootstrap, topic, "g-pieces", settings=settings)
    chunks = []
    for chunk in source.chunks():
        chunks.append(chunk)
        if chunk.origin == KafkaOrigin(topic, 0, 2, None):
            break
    consumer = source._consumer
    assert consumer is not None
    # the run before the large value, its four pieces, the run after it
    assert [(c.origin.offset, c.whole) for c in chunks] == [  # type: ignore[union-attr]
        (0, True), (1, False), (1, False), (1, False), (1, False), (2, True)]

    def committed_after(chunk: Chunk) -> int | None:
        source.acknowledge(chunk)
        with source._lock:
            source._commit(consumer, force=True)
        return kafka_tools.committed(topic, "g-pieces", 1)[0]

    assert committed_after(chunks[0]) == 1
    assert committed_after(chunks[2]) == 1  # record 1 is not handled until its last piece is
    assert committed_after(chunks[0]) == 1  # acknowledged again: nothing changes
    assert committed_after(chunks[4]) == 2
    assert committed_after(chunks[5]) == 3
    source.close()


WORKER = """
import json, sys, time
from jitsec.connectors.sources.kafka import KafkaSource, KafkaSourceSettings, parse_kafka_address
settings = KafkaSourceSettings(poll_timeout_ms=100, commit_interval_s=0.1, session_timeout_ms=6000,
                               max_partition_fetch_bytes=4096)
source = KafkaSource(parse_kafka_address(sys.argv[1]), follow=True, settings=settings)
for chunk in source.chunks():
    for part in chunk.split_parts():
        print(json.dumps([part.origin.partition, part.origin.offset]), flush=True)
        time.sleep(0.002)  # a scanner's pace, so that the kill lands mid-stream
    source.acknowledge(chunk)
"""


def _worker(address: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONWARNINGS": "ignore"}
    return subprocess.Popen([sys.executable, "-c", WORKER, address], stdout=subprocess.PIPE, text=True,
                            env=env, cwd=REPO)


def _read_lines(process: subprocess.Popen[str], into: list[tuple[int, int]]) -> threading.Thread:
    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            partition, offset = json.loads(line)
            into.append((partition, offset))

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    return thread


def _wait(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    assert wait_until(predicate, timeout, interval=0.05), "timed out"


@pytest.mark.slow
def test_killed_consumer_loses_nothing_after_restart(kafka_bootstrap: str, kafka_tools) -> None:
    topic = kafka_tools.topic(2)
    total = 2000
    kafka_tools.produce(topic, [f"line {i} planted-{i}".encode() for i in range(total)])
    address = f"kafka://{kafka_bootstrap}/{topic}?group=g-kill"

    first: list[tuple[int, int]] = []
    process = _worker(address)
    pump = _read_lines(process, first)
    try:
        _wait(lambda: len(first) >= 300
              and any(kafka_tools.committed(topic, "g-kill", 2)))
    finally:
        process.send_signal(signal.SIGKILL)  # no clean shutdown, no final commit (nor a stray worker)
    process.wait(timeout=10)
    pump.join(timeout=10)
    assert len(first) < total, "the consumer finished before it was killed; nothing was tested"

    second: list[tuple[int, int]] = []
    process = _worker(address)
    pump = _read_lines(process, second)
    try:
        _wait(lambda: len(set(first) | set(second)) >= total)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        finally:
            process.kill()  # a worker that did not stop in time is not left running
    seen = set(first) | set(second)
    per_partition = {p: sorted(o for q, o in seen if q == p) for p in (0, 1)}
    assert sum(len(v) for v in per_partition.values()) == total
    for offsets in per_partition.values():
        assert offsets == list(range(len(offsets)))  # no gap: every offset seen
    assert len(second) < total  # the restart resumed from a commit, it did not start over


def test_two_consumers_in_one_group_share_the_partitions(kafka_bootstrap: str, kafka_tools) -> None:
    topic = kafka_tools.topic(4)
    for partition in range(4):
        kafka_tools.produce(topic, [f"p{partition}-{i}".encode() for i in range(50)],
                 partition=partition)
    sources = [_source(kafka_bootstrap, topic, "g-share", follow=True) for _ in range(2)]
    got: list[list[KafkaOrigin]] = [[], []]

    def run(index: int) -> None:
        for chunk in sources[index].chunks():
            sources[index].acknowledge(chunk)
            for part in chunk.split_parts():
                assert isinstance(part.origin, KafkaOrigin)
                got[index].append(part.origin)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(2)]
    threads[0].start()
    _wait(lambda: len(got[0]) > 0)
    threads[1].start()  # joins later: the group rebalances, partitions are split
    _wait(lambda: len({(o.partition, o.offset) for o in got[0] + got[1]}) == 200
          and all(_stable_split(sources)))
    # after the split, new records land on both consumers
    for partition in range(4):
        kafka_tools.produce(topic, [f"late-{partition}".encode()], partition=partition)
    _wait(lambda: len({(o.partition, o.offset) for o in got[0] + got[1]}) == 204)
    for source in sources:
        source.close()
    for thread in threads:
        thread.join(timeout=20)
    late = [{o.partition for o in got[i] if o.offset == 50} for i in range(2)]
    assert late[0] and late[1]
    assert late[0] | late[1] == {0, 1, 2, 3}
    assert not late[0] & late[1]


def _stable_split(sources: list[KafkaSource]) -> Iterator[bool]:
    for source in sources:
        consumer = source._consumer
        yield consumer is not None and len(consumer.assignment()) == 2


def test_a_broker_that_is_not_there_yet_is_waited_for(
    kafka_bootstrap: str, kafka_tools, tcp_proxy: Callable[[str, int], Any]
) -> None:
    topic = kafka_tools.topic(1)
    kafka_tools.produce(topic, [b"first", b"second"])
    host, _, port = kafka_bootstrap.rpartition(":")
    forwarder = tcp_proxy(host, int(port))  # a port nothing listens on until the test says so
    source = KafkaSource(parse_kafka_address(f"kafka://127.0.0.1:{forwarder.port}/{topic}?group=g-late"),
                         follow=False, settings=FAST)
    chunks: list[Chunk] = []
    thread = threading.Thread(target=lambda: chunks.extend(_drain(source)), daemon=True)
    thread.start()
    try:
        _wait(lambda: source.errors.counts.get("connect", 0) >= 2, timeout=30)
        assert chunks == []
        forwarder.start()
        thread.join(timeout=60)
    finally:
        source.close()
    assert [c.data for c in chunks] == [b"first\n", b"second\n"]


def test_lag_counts_the_records_not_yet_handed_out(kafka_bootstrap: str, kafka_tools) -> None:
    topic = kafka_tools.topic(1)
    kafka_tools.produce(topic, [f"line {n}".encode() for n in range(300)])
    settings = dataclasses.replace(FAST, max_poll_records=50)
    source = _source(kafka_bootstrap, topic, f"g-{uuid.uuid4().hex[:8]}", settings=settings)
    assert source.lag() is None  # nothing fetched yet
    seen = 0
    lag_after_first_chunk = None
    try:
        for chunk in source.chunks():
            seen += len(chunk.split_parts())
            if lag_after_first_chunk is None:
                lag_after_first_chunk = source.lag()
            source.acknowledge(chunk)
    finally:
        source.close()
    assert seen == 300
    assert lag_after_first_chunk is not None and 250 <= lag_after_first_chunk < 300
    assert source.lag() == 0
