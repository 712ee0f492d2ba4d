"""Kafka throughput: MB/s consumed and scanned by one and by two consumer processes in one group.

Produces a seeded corpus of realistic log records (text lines and JSON events, a few planted
broker-format tokens) into a fresh topic, then, for each consumer count, starts that many processes
in a fresh consumer group, three times: ``client only`` polls kafka-python with the source's consumer
settings and does nothing else (the peer: what the client can deliver), ``source only`` runs
``KafkaSource`` and acknowledges every chunk, ``consume+scan`` runs it through the real scanner
pipeline (default rule packs). Printed per run: MB/s (first record read to last record handled, all
processes together) and, for the scan, planted tokens found. MB are record-value bytes as consumed
(before JSON splitting). When consume+scan is well below client only, the scanner, not the client,
is the bottleneck.

    python benchmarks/kafka_scan.py                      # short: 20 MB, 1 and 2 consumers
    python benchmarks/kafka_scan.py --megabytes 200      # longer
    python benchmarks/kafka_scan.py --bootstrap 127.0.0.1:59092 --consumers 1,2,4 --partitions 4
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import queue
import random
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from jitsec.kernel import credential_format as cf

SERVICES = ("GET", "POST", "PUT", "DELETE")
MODES = {"client": "client only", "source": "source only", "scan": "consume+scan"}
PATHS = ("/v1/tasks", "/v1/secrets", "/healthz", "/api/orders", "/api/users/42", "/metrics")


def corpus(megabytes: float, seed: int, planted_every: int) -> tuple[list[bytes], int]:
    """Records totalling ``megabytes``, 2/3 text lines and 1/3 JSON events; every ``planted_every``-th
    record carries a fresh broker-format token. Returns the records and the number planted."""
    rng = random.Random(seed)
    target = int(megabytes * 1_000_000)
    records: list[bytes] = []
    size = planted = 0
    while size < target:
        n = len(records)
        secret = ""
        if n % planted_every == planted_every - 1:
            secret = cf.mint(cf.CredentialKind.ENGINE_TOKEN)
            planted += 1
        ts = f"2026-01-01T00:{n // 60 % 60:02d}:{n % 60:02d}.{rng.randrange(1000):03d}Z"
        if n % 3 == 2:
            event = {"@timestamp": ts, "level": rng.choice(("info", "warn", "error")),
                     "service": "agent-runner",
                     "http": {"method": rng.choice(SERVICES), "path": rng.choice(PATHS),
                              "status": rng.choice((200, 201, 404, 500)), "duration_ms": rng.random() * 900},
                     "trace": {"id": uuid.UUID(int=rng.getrandbits(128)).hex},
                     "message": f"request handled for tenant {rng.randrange(10_000)}"
                                + (f" with header Authorization: Bearer {secret}" if secret else "")}
            value = json.dumps(event).encode()
        else:
            value = (f"{ts} INFO agent-runner[{rng.randrange(1, 65535)}] {rng.choice(SERVICES)} "
                     f"{rng.choice(PATHS)} status={rng.choice((200, 404))} bytes={rng.randrange(100000)} "
                     f"user=user{rng.randrange(5000)} session={uuid.UUID(int=rng.getrandbits(128))}"
                     + (f" token={secret}" if secret else "")).encode()
        records.append(value)
        size += len(value)
    return records, planted


def produce(bootstrap: str, topic: str, partitions: int, records: list[bytes]) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    finally:
        admin.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=20, batch_size=256 * 1024,
                             compression_type=None)
    for value in records:
        producer.send(topic, value)
    producer.flush()
    producer.close()


def worker(job: tuple[str, str, str, str, int], shared: dict, index: int) -> None:  # noqa: PLR0915
    """One consumer process: read (and scan) until the group together has handled ``total`` records.

    Modes: ``client`` polls kafka-python directly (the peer: what the client alone delivers),
    ``source`` runs ``KafkaSource`` and acknowledges every chunk, ``scan`` runs it through the scanner.
    """
    bootstrap, topic, group, mode, total = job
    parent = os.getppid()
    import logging  # noqa: PLC0415

    logging.disable(logging.WARNING)
    from jitsec.connectors.sources.kafka import KafkaSource, KafkaSourceSettings, parse_kafka_address  # noqa: PLC0415

    source = KafkaSource(parse_kafka_address(f"kafka://{bootstrap}/{topic}?group={group}"), follow=True,
                         settings=KafkaSourceSettings(poll_timeout_ms=100))
    first = [0.0]
    found: set[tuple[int, int]] = set()  # (partition, offset) of records with a broker-format finding
    size = [0]

    def watch_total() -> None:
        while not done():
            time.sleep(0.02)
        source.close()

    def count(partition: int, offset: int) -> None:
        """The group's progress: per partition, the offset after the highest record handled by any
        process (records of a partition are handled in order; a rebalance may repeat some, which
        must not count twice, or the run would stop before every record was handled)."""
        if not first[0]:
            first[0] = time.perf_counter()
        progress = shared["progress"]
        if progress[partition] <= offset:
            with progress.get_lock():
                progress[partition] = max(progress[partition], offset + 1)

    def done() -> bool:
        """Every record handled, or the parent is gone (killed: nobody would ever stop this process)."""
        return sum(shared["progress"][:]) >= total or os.getppid() != parent

    def handled(chunk, findings) -> None:  # type: ignore[no-untyped-def]
        """A chunk holds consecutive records of one partition (its parts), or a piece of one."""
        count(chunk.origin.partition, chunk.parts[-1][1] if chunk.parts else chunk.origin.offset)
        found.update((f.origin.partition, f.origin.offset) for f in findings if f.credential_sha256)

    threading.Thread(target=watch_total, daemon=True).start()
    if mode == "scan":
        from jitsec.scanner.engine import Scanner  # noqa: PLC0415
        from jitsec.scanner.fingerprint import Fingerprinter  # noqa: PLC0415
        from jitsec.scanner.ruleset import load_ruleset  # noqa: PLC0415

        from jitsec.pipeline.runner import run_sources  # noqa: PLC0415
        from jitsec.pipeline.stages import Callback  # noqa: PLC0415

        scanner = Scanner(load_ruleset(), Fingerprinter(b"benchmark-key-" * 2))
        shared["ready"].release()
        run_sources([source], scanner, [Callback(handled)])
        size[0] = source.bytes_read
    elif mode == "source":
        shared["ready"].release()
        for chunk in source.chunks():
            handled(chunk, [])
            source.acknowledge(chunk)
        source.close()
        size[0] = source.bytes_read
    else:
        shared["ready"].release()
        size[0] = client_only(source, count, done)
    shared["first"][index] = first[0]
    shared["last"][index] = time.perf_counter()
    shared["bytes"][index] = size[0]  # record values as consumed, before JSON splitting
    shared["found"].put(sorted(found))


def client_only(source, count, done) -> int:  # type: ignore[no-untyped-def]
    """Poll the source's own consumer (same settings) with none of the source's work; bytes read."""
    consumer = source._connect()
    size = 0
    while consumer is not None and not done():
        for records in consumer.poll(timeout_ms=100).values():
            for record in records:
                size += len(record.value or b"")
                count(record.partition, record.offset)
    source.close()
    return size


def run(bootstrap: str, topic: str, partitions: int, consumers: int, mode: str,  # noqa: PLR0917
        total: int) -> tuple[float, float, int]:
    """Seconds from the first record read to the last handled, MB handled, records whose planted token
    was found (by any process; a record read twice after a rebalance counts once)."""
    ctx = mp.get_context("spawn")
    shared = {"progress": ctx.Array("q", partitions), "ready": ctx.Semaphore(0),
              "first": ctx.Array("d", consumers), "last": ctx.Array("d", consumers),
              "bytes": ctx.Array("q", consumers), "found": ctx.Queue()}
    group = f"bench-{uuid.uuid4().hex[:8]}"
    job = (bootstrap, topic, group, mode, total)
    processes = [ctx.Process(target=worker, args=(job, shared, i), daemon=True) for i in range(consumers)]
    for process in processes:
        process.start()
    found: set[tuple[int, int]] = set()
    reports = 0
    while reports < consumers:  # read before join: a child with a full pipe does not exit
        try:
            found.update(map(tuple, shared["found"].get(timeout=1)))
            reports += 1
        except queue.Empty:
            if not any(process.is_alive() for process in processes):
                break  # one failed before reporting: its exit code says so below
    for process in processes:
        process.join()
        if process.exitcode != 0:
            raise SystemExit(f"consumer process failed with exit code {process.exitcode}")
    firsts = [t for t in shared["first"][:] if t]
    elapsed = max(shared["last"][:]) - min(firsts)
    return elapsed, sum(shared["bytes"][:]) / 1e6, len(found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap",
                        default=os.environ.get("JITSEC_TEST_KAFKA_BOOTSTRAP", "127.0.0.1:59092"))
    parser.add_argument("--megabytes", type=float, default=20.0)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--consumers", default="1,2", help="comma-separated process counts to compare")
    parser.add_argument("--planted-every", type=int, default=500)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    records, planted = corpus(args.megabytes, args.seed, args.planted_every)
    topic = f"bench-{uuid.uuid4().hex[:10]}"
    started = time.perf_counter()
    produce(args.bootstrap, topic, args.partitions, records)
    mb = sum(map(len, records)) / 1e6
    print(f"corpus: {len(records)} records, {mb:.1f} MB, {planted} planted tokens, topic {topic} "
          f"({args.partitions} partitions), produced in {time.perf_counter() - started:.1f} s")
    print(f"{'consumers':>9} {'mode':<13} {'seconds':>8} {'MB/s':>7} {'found':>11}")
    for consumers in (int(c) for c in args.consumers.split(",")):
        for mode, label in MODES.items():
            elapsed, handled_mb, found = run(
                args.bootstrap, topic, args.partitions, consumers, mode, len(records))
            shown = f"{found}/{planted}" if mode == "scan" else "-"
            print(f"{consumers:>9} {label:<13} {elapsed:>8.2f} {handled_mb / elapsed:>7.2f} {shown:>11}",
                  flush=True)


if __name__ == "__main__":
    main()
