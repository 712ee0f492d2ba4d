"""The fleet's incidents through the broker's HTTP API: sightings ingested per second, then the list
page's latency with the store full (100,000 incidents by default), next to ``GET /healthz``.

    python benchmarks/incidents.py                              # 100,000 incidents, SQLite store
    python benchmarks/incidents.py --incidents 20000 --postgres "$JITSEC_TEST_POSTGRES_DSN"

Every sighting names a new secret, so each one opens an incident (the costliest path: an insert of
the incident, its sighting, its timeline entry and its audit record). Batches are request-sized
(``sighting_batches``), sent over ``--concurrency`` keep-alive connections. Then each list query
(first page, filtered pages, a page deep in the cursor chain) runs ``--queries`` times; the peer in
the same run is ``GET /healthz`` on the same connection: the floor of HTTP and the load generator.
The console's target is a list page p95 under 200 ms; ingestion's at least 2,000 per second.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import time
from urllib.parse import quote

from broker_common import RawConnection, broker_process, cpu_seconds, percentile, report
from psycopg.conninfo import conninfo_to_dict

from jitsec.kernel.records import Confidence, ResponseAction, Severity
from jitsec.kernel.schemas import SIGHTING
from jitsec.kernel.sightings import Sighting, sighting_batches, sighting_id
from jitsec.testing import fresh_postgres_database

SEVERITIES = (Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL)
SOURCES = ("file", "git", "kafka", "elasticsearch")
RULES = ("github-pat", "aws-access-key", "slack-token", "stripe-key", "generic-password")


def sighting(number: int) -> dict[str, object]:
    fingerprint = f"hmac-sha256:{number:064x}"
    source = SOURCES[number % len(SOURCES)]
    location = f"{source}:bench/{number // 100}/{number}:{number % 97}"
    item = SIGHTING.to_dict(Sighting(
        sighting_id(fingerprint, source, location, "bench-host"), fingerprint, "00112233aabbccdd",
        RULES[number % len(RULES)], "benchmark secret", SEVERITIES[number % 4], Confidence.STRUCTURAL,
        "ghp_…(40 chars)", location, source, 1_800_000_000.0 + number, f"watch-{number % 8}",
        "bench-host", ResponseAction.ALERT_ONLY, agent=f"agent-{number % 50}"))
    item.pop("schema")
    return item


async def send_all(url: str, requests: list[bytes], concurrency: int) -> tuple[float, list[float], int]:
    connections = [await RawConnection.open(url) for _ in range(concurrency)]
    queue = list(reversed(requests))
    latencies: list[float] = []
    failures = 0

    async def worker(connection: RawConnection) -> None:
        nonlocal failures
        while queue:
            request = queue.pop()
            started = time.perf_counter()
            status, _ = await connection.send(request)
            latencies.append(time.perf_counter() - started)
            failures += status >= 400

    began = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in connections))
    elapsed = time.perf_counter() - began
    for connection in connections:
        connection.close()
    return elapsed, latencies, failures


async def timed(url: str, request: bytes, count: int) -> tuple[list[float], bytes]:
    connection = await RawConnection.open(url)
    latencies, body = [], b""
    for _ in range(count):
        started = time.perf_counter()
        status, body = await connection.send(request)
        latencies.append(time.perf_counter() - started)
        if status >= 400:
            raise RuntimeError(f"{status}: {body[:200]!r}")
    connection.close()
    return latencies, body


def summary(latencies: list[float]) -> dict[str, float]:
    return {f"p{q}_ms": round(percentile(latencies, q) * 1e3, 2) for q in (50, 95, 99)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--queries", type=int, default=200, help="requests per list query")
    parser.add_argument("--postgres", metavar="ADMIN_DSN", default=None,
                        help="store in PostgreSQL: a fresh database on this server, dropped afterwards "
                             "(default: the embedded SQLite file)")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        store = None
        if args.postgres:
            dsn = stack.enter_context(fresh_postgres_database(args.postgres, "jitsec_bench"))
            parts = conninfo_to_dict(dsn)
            user, password = (quote(str(parts[name]), safe="") for name in ("user", "password"))
            store = (f"postgresql://{user}:{password}@{parts.get('host', '127.0.0.1')}:"
                     f"{parts.get('port', 5432)}/{parts['dbname']}")
        run(args, store)


def run(args: argparse.Namespace, store: str | None) -> None:
    def edit(text: str) -> str:
        if store is None:
            return text
        return re.sub(r"^store = .*$", f"store = {json.dumps(store)}", text, count=1, flags=re.MULTILINE)

    with broker_process(edit=edit) as (url, keys, _, pid):
        scanner = {"Authorization": f"Bearer {keys['scanner']}"}
        analyst = {"Authorization": f"Bearer {keys['analyst']}"}
        items = [sighting(n) for n in range(args.incidents)]
        bodies = [RawConnection.build("POST", "/v1/incidents", scanner, {"sightings": batch})
                  for batch in sighting_batches(items)]
        cpu_before = cpu_seconds(pid)
        elapsed, latencies, failures = asyncio.run(send_all(url, bodies, args.concurrency))
        cpu = cpu_seconds(pid) - cpu_before
        report("ingest", {
            "sightings": len(items), "requests": len(bodies), "per_second": round(len(items) / elapsed),
            "request_p99_ms": round(percentile(latencies, 99) * 1e3, 1), "failures": failures,
            "broker_cpu_us_per_sighting": round(cpu / len(items) * 1e6),
            "cpu_bound_per_second": round(len(items) / cpu) if cpu else None,  # one core to itself
        })
        health = RawConnection.build("GET", "/healthz", {}, None)
        report("peer GET /healthz", summary(asyncio.run(timed(url, health, args.queries))[0]))
        first = RawConnection.build("GET", "/v1/incidents?limit=50", analyst, None)
        _, body = asyncio.run(timed(url, first, 1))
        cursor = json.loads(body)["next_cursor"]
        deep_cursor = int(cursor) - args.incidents // 2 if cursor else 0
        queries = {
            "first page (50)": "/v1/incidents?limit=50",
            "status=open&severity=critical": "/v1/incidents?status=open&severity=critical&limit=50",
            "rule=stripe-key&source=kafka": "/v1/incidents?rule=stripe-key&source=kafka&limit=50",
            "agent=agent-7": "/v1/incidents?agent=agent-7&limit=50",
            "since (the last 3,600 s of sightings)":
                f"/v1/incidents?since={1_800_000_000 + args.incidents - 3600}&limit=50",
            "a page half way down the cursor chain": f"/v1/incidents?cursor={deep_cursor}&limit=50",
            "500 per page": "/v1/incidents?limit=500",
        }
        for title, path in queries.items():
            request = RawConnection.build("GET", path, analyst, None)
            latencies, _ = asyncio.run(timed(url, request, args.queries))
            report(f"list {title}", summary(latencies))


if __name__ == "__main__":
    main()
