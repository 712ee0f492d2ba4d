"""Kafka throughput: MB/s consumed and scanned by one and by two consumer processes in one group.

Produces a seeded corpus of realistic log records (text lines and JSON events, a few planted
broker-format tokens) into a fresh topic, then, for each consumer count, starts that many processes
in a fresh consumer group. Each runs ``KafkaSource`` through the real scanner pipeline (default rule
packs) and acknowledges every chunk. Printed per run: MB/s scanned (first record read to last record
handled, all processes together), the same for a consume-only pass (source, no scanner) as the peer
figure, and planted tokens found. MB are record-value bytes as consumed (before JSON splitting).
When scanning is much slower than consuming, the scanner, not the client, is the bottleneck.

    python benchmarks/kafka_scan.py                      # short: 20 MB, 1 and 2 consumers
    python benchmarks/kafka_scan.py --megabytes 200      # longer
    python benchmarks/kafka_scan.py --bootstrap 127.0.0.1:59092 --consumers 1,2,4 --partitions 4
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from jitsec import credential_format as cf

SERVICES = ("GET", "POST", "PUT", "DELETE")
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


def worker(job: tuple[str, str, str, bool, int], shared: dict, index: int) -> None:
    """One consumer process: read (and scan) until the group together has handled ``total`` records."""
    bootstrap, topic, group, scan, total = job
    import logging  # noqa: PLC0415

    logging.disable(logging.WARNING)
    from connectors.sources.kafka import KafkaSource, KafkaSourceSettings, parse_kafka_address  # noqa: PLC0415

    source = KafkaSource(parse_kafka_address(f"kafka://{bootstrap}/{topic}?group={group}"), follow=True,
                         settings=KafkaSourceSettings(poll_timeout_ms=100))
    seen_records: set[tuple[int, int]] = set()
    first = [0.0]
    found = [0]

    def watch_total() -> None:
        while shared["handled"].value < total:
            time.sleep(0.02)
        source.close()

    def counted(chunks):  # type: ignore[no-untyped-def]
        """The source's chunks, counting distinct records as they are read (the group's progress)."""
        for chunk in chunks:
            origin = chunk.origin
            if not first[0]:
                first[0] = time.perf_counter()
            key = (origin.partition, origin.offset)
            if key not in seen_records:
                seen_records.add(key)
                with shared["handled"].get_lock():
                    shared["handled"].value += 1
            yield chunk

    def handled(chunk, findings) -> None:  # type: ignore[no-untyped-def]
        found[0] += sum(1 for f in findings if f.credential_sha256)

    read_chunks = source.chunks
    source.chunks = lambda: counted(read_chunks())  # type: ignore[method-assign]
    threading.Thread(target=watch_total, daemon=True).start()
    if scan:
        from scanner.engine import Scanner  # noqa: PLC0415
        from scanner.fingerprint import Fingerprinter  # noqa: PLC0415
        from scanner.pipeline import run_sources  # noqa: PLC0415
        from scanner.ruleset import load_ruleset  # noqa: PLC0415

        scanner = Scanner(load_ruleset(), Fingerprinter(b"benchmark-key-" * 2))
        shared["ready"].release()
        run_sources([source], scanner, handled)
    else:
        shared["ready"].release()
        for chunk in source.chunks():
            handled(chunk, [])
            source.acknowledge(chunk)
        source.close()
    shared["first"][index] = first[0]
    shared["last"][index] = time.perf_counter()
    shared["bytes"][index] = source.bytes_read  # record values as consumed, before JSON splitting
    shared["found"][index] = found[0]


def run(bootstrap: str, topic: str, consumers: int, scan: bool, total: int) -> tuple[float, float, int]:
    """Seconds from the first record read to the last handled, MB handled, planted tokens found."""
    ctx = mp.get_context("spawn")
    shared = {"handled": ctx.Value("q", 0), "ready": ctx.Semaphore(0),
              "first": ctx.Array("d", consumers), "last": ctx.Array("d", consumers),
              "bytes": ctx.Array("q", consumers), "found": ctx.Array("q", consumers)}
    group = f"bench-{uuid.uuid4().hex[:8]}"
    processes = [ctx.Process(target=worker, args=((bootstrap, topic, group, scan, total), shared, i))
                 for i in range(consumers)]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
        if process.exitcode != 0:
            raise SystemExit(f"consumer process failed with exit code {process.exitcode}")
    firsts = [t for t in shared["first"][:] if t]
    elapsed = max(shared["last"][:]) - min(firsts)
    return elapsed, sum(shared["bytes"][:]) / 1e6, sum(shared["found"][:])


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
        for scan in (False, True):
            elapsed, handled_mb, found = run(args.bootstrap, topic, consumers, scan, len(records))
            mode = "consume+scan" if scan else "consume only"
            shown = f"{found}/{planted}" if scan else "-"
            print(f"{consumers:>9} {mode:<13} {elapsed:>8.2f} {handled_mb / elapsed:>7.2f} {shown:>11}")


if __name__ == "__main__":
    main()
