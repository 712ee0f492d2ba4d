"""Console list page latency with many incidents in the store: the page an analyst opens most.

    python benchmarks/console.py                          # 100,000 incidents, 300 page loads
    python benchmarks/console.py --incidents 20000 --requests 100

A `jitsec broker serve` process over a fresh SQLite store, filled through ``POST /v1/incidents`` with
the incidents benchmark's own sightings (``benchmarks/incidents.py``: one new secret each, spread
over rules, sources, severities and 50 agents); a few hundred, spread through the table, are then
acknowledged. A signed-in client then loads ``/console/incidents`` with each filter of the page in
turn (none, a status, a severity, a rule, an agent, a source, a rare status, a rule that matches
nothing so the whole table is searched, the second page) and
reports p50/p95/max per filter and overall. The peer in the same run is the JSON API's
``GET /v1/incidents`` with the same filters: the page should cost little more than the data it shows.
The target is a p95 under 200 ms with 100,000 incidents.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from broker_common import RawConnection, broker_process, percentile
from incidents import send_all, sighting  # the incidents benchmark's sightings and load sender
from jitsec.broker.config import load_config
from jitsec.broker.runtime import build_broker

from jitsec.kernel.sightings import sighting_batches

QUERIES: dict[str, dict[str, str]] = {
    "no filter": {},
    "status=open": {"status": "open"},
    "severity=critical": {"severity": "critical"},
    "rule=github-pat": {"rule": "github-pat"},
    "agent=agent-7": {"agent": "agent-7"},
    "source=kafka": {"source": "kafka"},
    "status=acknowledged (rare)": {"status": "acknowledged"},
    "rule matching nothing": {"rule": "no-such-rule"},
}
ACKNOWLEDGED = 300


def fill(url: str, scanner_key: str, config: Path, count: int) -> float:
    """``count`` incidents through the API, then ``ACKNOWLEDGED`` of them acknowledged, spread
    through the table; returns sightings ingested per second."""
    scanner = {"Authorization": f"Bearer {scanner_key}"}
    bodies = [RawConnection.build("POST", "/v1/incidents", scanner, {"sightings": batch})
              for batch in sighting_batches([sighting(n) for n in range(count)])]
    elapsed, _, failures = asyncio.run(send_all(url, bodies, 4))
    assert failures == 0, f"{failures} ingest requests failed"
    broker = build_broker(load_config(config))
    try:
        desk, cursor, step = broker.service.incidents, None, max(1, count // ACKNOWLEDGED)
        for _ in range(ACKNOWLEDGED):
            page = desk.list(cursor=cursor, limit=step)
            if not page.items:
                break
            desk.act(page.items[0].incident_id, "ack", "bench-analyst", "benchmark")
            cursor = page.next_cursor
            if cursor is None:
                break
    finally:
        broker.close()
    return count / elapsed


def signed_in(url: str, key: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=30, follow_redirects=False)
    form = client.get("/console/sign-in").text
    token = re.search(r'name="csrf" value="([^"]+)"', form)
    assert token is not None, "no sign-in form"
    answer = client.post("/console/sign-in", data={"csrf": token.group(1), "key": key})
    assert answer.status_code == 303, f"sign-in refused: {answer.status_code}"
    return client


def timed(load: Callable[[], httpx.Response]) -> float:
    started = time.perf_counter()
    answer = load()
    elapsed = (time.perf_counter() - started) * 1000
    assert answer.status_code == 200, answer.status_code
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=300,
                        help="page loads in all (spread over the filters)")
    args = parser.parse_args()
    with broker_process() as (url, keys, config, _pid):
        analyst = keys["analyst"]
        rate = fill(url, keys["scanner"], config, args.incidents)
        print(f"{args.incidents:,} incidents ingested over HTTP at {rate:,.0f}/s; "
              f"{ACKNOWLEDGED} acknowledged")
        page = signed_in(url, analyst)
        api = httpx.Client(base_url=url, timeout=30, headers={"Authorization": f"Bearer {analyst}"})
        second = re.search(r'href="/console/incidents\?(cursor=[^"]+)"', page.get("/console/incidents").text)
        queries = dict(QUERIES)
        if second is not None:
            queries["second page"] = dict(part.split("=", 1) for part in second.group(1).split("&amp;"))
        rounds = max(1, args.requests // len(queries))
        results: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in queries}
        has_api = api.get("/v1/incidents").status_code == 200  # the peer, where this broker has it
        for params in queries.values():  # warm-up: one of each
            timed(lambda params=params: page.get("/console/incidents", params=params))
        for _ in range(rounds):
            for name, params in queries.items():
                pages, calls = results[name]
                pages.append(timed(lambda params=params: page.get("/console/incidents", params=params)))
                if has_api:
                    calls.append(timed(lambda params=params: api.get("/v1/incidents", params=params)))
    print(f"{'filter':<28}{'page p50':>10}{'page p95':>10}{'page max':>10}{'API p95':>10}  (ms)")
    every_page: list[float] = []
    for name, (pages, calls) in results.items():
        every_page += pages
        peer = f"{percentile(calls, 95):>10.1f}" if calls else f"{'-':>10}"
        print(f"{name:<28}{percentile(pages, 50):>10.1f}{percentile(pages, 95):>10.1f}{max(pages):>10.1f}"
              f"{peer}")
    p95 = percentile(every_page, 95)
    print(f"{'all':<28}{percentile(every_page, 50):>10.1f}{p95:>10.1f}{max(every_page):>10.1f}")
    print(f"list page p95 {p95:.1f} ms over {len(every_page)} loads with {args.incidents:,} incidents: "
          f"{'under' if p95 < 200 else 'OVER'} the 200 ms target")


if __name__ == "__main__":
    main()
