"""The daemon on the fast path: ``jitsec watch elasticsearch://…`` (a real subprocess) backfilling an
index pattern, against ``ElasticsearchSource`` alone, side by side in one run.

Indexes the seeded corpus of ``es_backfill.py`` (ECS-like log documents, planted broker-format tokens)
into fresh indices, then runs, round after round, each contender as its own process over the whole
pattern:

- ``source``: ``ElasticsearchSource`` in follow mode (as the daemon runs it) with its default settings,
  every chunk acknowledged and nothing else, until every document was read (the peer);
- ``watch``: ``jitsec watch elasticsearch://HOST:PORT/PATTERN --exit-when-idle S -f json`` with the
  default rule packs, timed by the daemon itself (``active_seconds``: the first batch received to the
  last chunk handled); every planted token must be found.

Both clocks start at the first page of documents. Rounds alternate which goes first; the table gives
every run, the median of each and the ratio of the medians. MB are string fields read as
``name: value`` (what is scanned), the same for both.

    python benchmarks/watch_elasticsearch.py                   # 100,000 documents, 3 rounds
    python benchmarks/watch_elasticsearch.py --documents 20000 --rounds 5
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

from elasticsearch import Elasticsearch, helpers

from benchmarks.es_backfill import documents
from benchmarks.watch_common import load, watch

PEER = "source"
OURS = "watch"



def source_alone(url: str, pattern: str, total: int) -> dict[str, float]:
    """The peer, in this (child) process."""
    from jitsec.connectors.sources.elasticsearch import (  # noqa: PLC0415
        ElasticsearchSource,
        parse_elasticsearch_address,
    )

    source = ElasticsearchSource(parse_elasticsearch_address(
        f"elasticsearch://{url.removeprefix('http://')}/{pattern}"), follow=True)
    size = 0
    first = 0.0
    try:
        for batch in source.batches():
            if not first and batch:
                first = time.perf_counter()
            size += sum(len(chunk.data) for chunk in batch)
            if batch:
                source.acknowledge(batch[-1])
            if source.documents_read >= total:
                break
        seconds = time.perf_counter() - first
    finally:
        source.close()
    return {"seconds": seconds, "bytes": size, "documents": source.documents_read}


def run_source(url: str, pattern: str, total: int) -> tuple[float, int]:
    done = subprocess.run([sys.executable, __file__, "--peer", "--url", url, "--pattern", pattern,
                           "--total", str(total)], capture_output=True, text=True, check=False, timeout=900)
    if done.returncode != 0:
        raise SystemExit(f"source alone failed: {done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["documents"] != total:
        raise SystemExit(f"source alone read {result['documents']} documents, expected {total}")
    return float(result["seconds"]), int(result["bytes"])


def run_watch(url: str, pattern: str, planted: int, idle: float) -> tuple[float, int, str]:
    summary, said = watch(f"elasticsearch://{url.removeprefix('http://')}/{pattern}", planted, idle, 900)
    return float(summary["active_seconds"]), int(summary["bytes"]), said


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("JITSEC_TEST_ELASTICSEARCH_URL", "http://127.0.0.1:59200"))
    parser.add_argument("--documents", type=int, default=100_000)
    parser.add_argument("--indices", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--idle", type=float, default=3.0, help="the daemon's --exit-when-idle")
    parser.add_argument("--planted-every", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the benchmark indices afterwards")
    parser.add_argument("--peer", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--pattern", help=argparse.SUPPRESS)
    parser.add_argument("--total", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peer:  # a child: the source alone
        print(json.dumps(source_alone(args.url, args.pattern, args.total)))
        return

    client = Elasticsearch(args.url, request_timeout=120)
    prefix = f"bench-{uuid.uuid4().hex[:10]}"
    try:
        for i in range(args.indices):
            client.indices.create(
                index=f"{prefix}-{i}",
                settings={"number_of_shards": 1, "number_of_replicas": 0, "refresh_interval": "-1"},
                mappings={"properties": {"@timestamp": {"type": "date"}}})
        docs, planted = documents(args.documents, prefix, args.indices, args.seed, args.planted_every)
        started = time.perf_counter()
        helpers.bulk(client.options(request_timeout=120), docs, chunk_size=2000)
        client.indices.refresh(index=f"{prefix}-*")
        print(f"corpus: {args.documents} documents in {args.indices} indices, {planted} planted tokens, "
              f"indexed in {time.perf_counter() - started:.1f} s; load average {load()}")
        rates: dict[str, list[float]] = {PEER: [], OURS: []}
        for round_ in range(args.rounds):
            for name in ((PEER, OURS) if round_ % 2 == 0 else (OURS, PEER)):
                if name == OURS:
                    seconds, size, said = run_watch(args.url, f"{prefix}-*", planted, args.idle)
                else:
                    (seconds, size), said = run_source(args.url, f"{prefix}-*", args.documents), ""
                rates[name].append(size / 1e6 / seconds)
                print(f"round {round_ + 1} {name:<7} {seconds:6.2f} s {args.documents / seconds:8.0f} docs/s "
                      f"{size / 1e6 / seconds:6.2f} MB/s  {said}", flush=True)
        print(f"load average {load()}")
        medians = {name: statistics.median(values) for name, values in rates.items()}
        for name, values in rates.items():
            print(f"{name:<7} MB/s {' / '.join(f'{v:.2f}' for v in values):<24} median {medians[name]:.2f}")
        print(f"watch / source alone: {medians[OURS] / medians[PEER]:.0%} (ratio of the medians)")
    finally:
        if not args.keep:
            client.indices.delete(index=f"{prefix}-*", ignore_unavailable=True, allow_no_indices=True)
        client.close()


if __name__ == "__main__":
    main()
