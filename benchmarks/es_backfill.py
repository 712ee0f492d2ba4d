"""Elasticsearch backfill throughput: documents/s read by ElasticsearchSource, alone and through the scanner.

Indexes a seeded corpus of log documents (ECS-like fields, a few planted broker-format tokens) into
fresh indices, then backfills the pattern twice: source only (point in time + search_after, every
string field made a chunk and acknowledged) as the peer figure, and through the real scanner pipeline
with the default rule packs. Prints documents/s, MB/s of string fields and planted tokens found.

    python benchmarks/es_backfill.py                 # short: 20,000 documents
    python benchmarks/es_backfill.py --full          # 100,000 documents
    python benchmarks/es_backfill.py --documents 250000 --page-size 2000 --url http://127.0.0.1:59200
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from elasticsearch import Elasticsearch, helpers
from jitsec.connectors.sources.elasticsearch import (
    ElasticsearchSource,
    ElasticsearchSourceSettings,
    parse_elasticsearch_address,
)

from jitsec.kernel import credential_format as cf
from jitsec.kernel.records import Chunk, Finding

LEVELS = ("info", "warn", "error", "debug")
PATHS = ("/v1/tasks", "/v1/secrets", "/healthz", "/api/orders", "/api/users/42", "/metrics")


def documents(count: int, prefix: str, indices: int, seed: int, planted_every: int) -> tuple[list[dict], int]:
    rng = random.Random(seed)
    docs, planted = [], 0
    base = 1_767_225_600_000  # 2026-01-01T00:00:00Z in epoch millis
    for n in range(count):
        secret = ""
        if n % planted_every == planted_every - 1:
            secret = cf.mint(cf.CredentialKind.ENGINE_TOKEN)
            planted += 1
        docs.append({
            "_index": f"{prefix}-{n % indices}", "_id": f"d{n}", "@timestamp": base + n,
            "log": {"level": rng.choice(LEVELS), "logger": "agent-runner"},
            "http": {"request": {"method": "GET", "path": rng.choice(PATHS)},
                     "response": {"status_code": rng.choice((200, 404, 500))}},
            "user": {"name": f"user{rng.randrange(5000)}"},
            "trace": {"id": uuid.UUID(int=rng.getrandbits(128)).hex},
            "message": f"request handled for tenant {rng.randrange(10_000)} in {rng.random() * 900:.1f} ms"
                       + (f" Authorization: Bearer {secret}" if secret else ""),
        })
    return docs, planted


def backfill(url: str, pattern: str, settings: ElasticsearchSourceSettings,
             scan: bool) -> tuple[float, int, int, int]:
    """Seconds, documents, bytes of string fields, planted tokens found."""
    source = ElasticsearchSource(parse_elasticsearch_address(f"elasticsearch://{url.removeprefix('http://')}/"
                                                             f"{pattern}"), follow=False, settings=settings)
    size = [0]
    found = [0]
    lock = threading.Lock()

    def handled(chunk: Chunk, findings: list[Finding]) -> None:
        with lock:
            size[0] += len(chunk.data)
            found[0] += sum(1 for f in findings if f.credential_sha256)

    started = time.perf_counter()
    if scan:
        from jitsec.scanner.engine import Scanner  # noqa: PLC0415
        from jitsec.scanner.fingerprint import Fingerprinter  # noqa: PLC0415
        from jitsec.scanner.ruleset import load_ruleset  # noqa: PLC0415

        from jitsec.pipeline.runner import run_sources  # noqa: PLC0415
        from jitsec.pipeline.stages import Callback  # noqa: PLC0415

        scanner = Scanner(load_ruleset(), Fingerprinter(b"benchmark-key-" * 2))
        started = time.perf_counter()
        run_sources([source], scanner, [Callback(handled)])
    else:
        for chunk in source.chunks():
            handled(chunk, [])
            source.acknowledge(chunk)
        source.close()
    return time.perf_counter() - started, source.documents_read, size[0], found[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("JITSEC_TEST_ELASTICSEARCH_URL", "http://127.0.0.1:59200"))
    parser.add_argument("--documents", type=int, default=20_000)
    parser.add_argument("--full", action="store_true", help="100,000 documents (overrides --documents)")
    parser.add_argument("--indices", type=int, default=4)
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--planted-every", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the benchmark indices afterwards")
    args = parser.parse_args()
    count = 100_000 if args.full else args.documents

    client = Elasticsearch(args.url, request_timeout=120)
    prefix = f"bench-{uuid.uuid4().hex[:10]}"
    try:
        for i in range(args.indices):
            client.indices.create(
                index=f"{prefix}-{i}",
                settings={"number_of_shards": 1, "number_of_replicas": 0, "refresh_interval": "-1"},
                mappings={"properties": {"@timestamp": {"type": "date"}}})
        docs, planted = documents(count, prefix, args.indices, args.seed, args.planted_every)
        started = time.perf_counter()
        helpers.bulk(client.options(request_timeout=120), docs, chunk_size=2000)
        client.indices.refresh(index=f"{prefix}-*")
        print(f"corpus: {count} documents in {args.indices} indices, {planted} planted tokens, "
              f"indexed in {time.perf_counter() - started:.1f} s; page size {args.page_size}")
        settings = ElasticsearchSourceSettings(page_size=args.page_size)
        print(f"{'mode':<14} {'seconds':>8} {'docs/s':>8} {'MB/s':>6} {'found':>9}")
        for scan in (False, True):
            elapsed, read, size, found = backfill(args.url, f"{prefix}-*", settings, scan)
            if read != count:
                raise SystemExit(f"backfill read {read} documents, expected {count}")
            shown = f"{found}/{planted}" if scan else "-"
            mode = "source+scan" if scan else "source only"
            rate = size / 1e6 / elapsed
            print(f"{mode:<14} {elapsed:>8.2f} {read / elapsed:>8.0f} {rate:>6.2f} {shown:>9}")
    finally:
        if not args.keep:
            client.indices.delete(index=f"{prefix}-*", ignore_unavailable=True, allow_no_indices=True)
        client.close()


if __name__ == "__main__":
    main()
