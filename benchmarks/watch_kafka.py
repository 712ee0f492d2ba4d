"""The daemon on the fast path: ``jitsec watch kafka://…`` (a real subprocess) against kafka-python's own
raw consume rate, side by side in one run.

Produces the seeded corpus of ``kafka_scan.py`` (text lines and JSON events, planted broker-format
tokens) into a fresh topic, then runs, round after round, each contender as its own process in a fresh
consumer group, one consumer, reading the whole topic:

- ``kafka-python``: the client alone, built with the Kafka source's own consumer settings
  (``KafkaSource._connect``: fetch sizes, ``max_poll_records``, timeouts) and polled with the source's
  poll timeout; it sums the value sizes and does nothing else (the peer);
- ``watch``: ``jitsec watch kafka://HOST:PORT/TOPIC?group=G --exit-when-idle S -f json`` with the
  default rule packs, timed by the daemon itself (``active_seconds`` of its summary: the first batch
  received to the last chunk handled, so start-up, the group join and the idle wait at the end are
  left out); every planted token must be found;
- ``confluent`` (with ``--confluent``, needs ``confluent-kafka``): librdkafka's consumer with the same
  settings where they map, ``consume(500)`` per call, and ``watch-confluent``: the daemon on it
  (``kafka://…&client=confluent``, the ``jitsec[confluent]`` extra), also against kafka-python.

The peer's clock also starts at its first poll that returns records. Rounds alternate the order of the
contenders (peer first, then ours first), so both see the same machine; the table gives every run,
the median of each, and the ratio of the medians. MB are record-value bytes as produced.

    python benchmarks/watch_kafka.py                       # 20 MB, 4 partitions, 3 rounds
    python benchmarks/watch_kafka.py --rounds 5 --confluent   # + librdkafka, alone and in the daemon
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.kafka_scan import corpus, produce
from benchmarks.watch_common import load, watch

PEER = "kafka-python"
OURS = "watch"



def consume_kafka_python(bootstrap: str, topic: str, group: str, total: int) -> dict[str, float]:
    """The peer, in this (child) process: the source's own consumer, polled raw."""
    import logging  # noqa: PLC0415

    logging.disable(logging.WARNING)
    from jitsec.connectors.sources.kafka import KafkaSource, parse_kafka_address  # noqa: PLC0415

    source = KafkaSource(parse_kafka_address(f"kafka://{bootstrap}/{topic}?group={group}"), follow=True)
    consumer = source._connect()  # the consumer the source would use, same settings
    assert consumer is not None
    timeout = source.settings.poll_timeout_ms
    records = size = 0
    first = 0.0
    while records < total:
        for batch in consumer.poll(timeout_ms=timeout).values():
            if not first:
                first = time.perf_counter()
            for record in batch:
                size += len(record.value or b"")
            records += len(batch)
    seconds = time.perf_counter() - first
    source.close()
    return {"seconds": seconds, "bytes": size, "records": records}


def consume_confluent(bootstrap: str, topic: str, group: str, total: int) -> dict[str, float]:
    """librdkafka through confluent-kafka, with the source's settings where they map."""
    from confluent_kafka import Consumer  # noqa: PLC0415
    from jitsec.connectors.sources.kafka import KafkaSourceSettings  # noqa: PLC0415

    settings = KafkaSourceSettings()
    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
        "auto.offset.reset": "earliest", "max.partition.fetch.bytes": settings.max_partition_fetch_bytes,
        "session.timeout.ms": settings.session_timeout_ms,
        "heartbeat.interval.ms": max(1000, settings.session_timeout_ms // 4),
    })
    consumer.subscribe([topic])
    records = size = 0
    first = 0.0
    while records < total:
        messages = consumer.consume(settings.max_poll_records, settings.poll_timeout_ms / 1000)
        for message in messages:
            if message.error():
                continue
            if not first:
                first = time.perf_counter()
            size += len(message.value() or b"")
            records += 1
    seconds = time.perf_counter() - first
    consumer.close()
    return {"seconds": seconds, "bytes": size, "records": records}


CONSUMERS = {"kafka-python": consume_kafka_python, "confluent": consume_confluent}


def run_consumer(name: str, bootstrap: str, topic: str, total: int) -> float:
    """Seconds the client in a child process took from its first records to the last."""
    group = f"peer-{uuid.uuid4().hex[:8]}"
    done = subprocess.run([sys.executable, __file__, "--consume", name, "--bootstrap", bootstrap,
                           "--topic", topic, "--total", str(total), "--group", group],
                          capture_output=True, text=True, check=False, timeout=600)
    if done.returncode != 0:
        raise SystemExit(f"{name} consumer failed: {done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["records"] != total:
        raise SystemExit(f"{name} read {result['records']} records, expected {total}")
    return float(result["seconds"])


def run_watch(bootstrap: str, topic: str, planted: int, idle: float, client: str = "kafka-python",
              ) -> tuple[float, str]:
    """Seconds the daemon reports from its first batch to its last handled chunk, and its exit lines."""
    group = f"watch-{uuid.uuid4().hex[:8]}"
    summary, said = watch(f"kafka://{bootstrap}/{topic}?group={group}&client={client}", planted, idle, 600)
    return float(summary["active_seconds"]), said


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap",
                        default=os.environ.get("JITSEC_TEST_KAFKA_BOOTSTRAP", "127.0.0.1:59092"))
    parser.add_argument("--megabytes", type=float, default=20.0)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--idle", type=float, default=3.0, help="the daemon's --exit-when-idle")
    parser.add_argument("--confluent", action="store_true", help="also measure confluent-kafka (librdkafka)")
    parser.add_argument("--planted-every", type=int, default=500)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--topic", help="reuse this topic (produced by an earlier run with the same corpus)")
    parser.add_argument("--consume", choices=sorted(CONSUMERS), help=argparse.SUPPRESS)
    parser.add_argument("--total", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--group", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.consume:  # a child: one contender's run
        print(json.dumps(CONSUMERS[args.consume](args.bootstrap, args.topic, args.group, args.total)))
        return

    records, planted = corpus(args.megabytes, args.seed, args.planted_every)
    mb = sum(map(len, records)) / 1e6
    topic = args.topic
    if topic is None:
        topic = f"bench-{uuid.uuid4().hex[:10]}"
        started = time.perf_counter()
        produce(args.bootstrap, topic, args.partitions, records)
        print(f"produced in {time.perf_counter() - started:.1f} s")
    print(f"corpus: {len(records)} records, {mb:.1f} MB, {planted} planted tokens, topic {topic} "
          f"({args.partitions} partitions); load average {load()}")
    contenders = [PEER, OURS] + (["confluent", "watch-confluent"] if args.confluent else [])
    rates: dict[str, list[float]] = {name: [] for name in contenders}
    for round_ in range(args.rounds):
        order = contenders if round_ % 2 == 0 else contenders[::-1]
        for name in order:
            if name in (OURS, "watch-confluent"):
                seconds, said = run_watch(args.bootstrap, topic, planted, args.idle,
                                          "confluent" if name == "watch-confluent" else "kafka-python")
            else:
                seconds, said = run_consumer(name, args.bootstrap, topic, len(records)), ""
            rates[name].append(mb / seconds)
            print(f"round {round_ + 1} {name:<15} {seconds:6.2f} s {mb / seconds:6.2f} MB/s  {said}",
                  flush=True)
    print(f"load average {load()}")
    print(f"{'contender':<15} {'MB/s per run':<36} {'median':>7}")
    medians = {name: statistics.median(values) for name, values in rates.items()}
    for name, values in rates.items():
        print(f"{name:<15} {' / '.join(f'{v:.2f}' for v in values):<36} {medians[name]:7.2f}")
    print(f"watch / kafka-python: {medians[OURS] / medians[PEER]:.0%} (ratio of the medians)")
    if args.confluent:
        print(f"confluent / kafka-python: {medians['confluent'] / medians[PEER]:.2f}x")
        print(f"watch-confluent / kafka-python: {medians['watch-confluent'] / medians[PEER]:.0%}")


if __name__ == "__main__":
    main()
