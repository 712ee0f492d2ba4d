"""Console list page latency with many incidents in the store: the page an analyst opens most.

    python -m benchmarks.console                          # 100,000 incidents, 300 page loads
    python -m benchmarks.console --incidents 20000 --requests 100

A `jitsec broker serve` process over a fresh SQLite store; the incidents are ingested through the
incident desk (1,000 sightings a batch, as ``POST /v1/incidents`` takes them), a few hundred
acknowledged. A signed-in client then loads ``/console/incidents`` with each filter of the page in
turn (none, a status, a severity, a rule, an agent, a source, a rare status, a rule that matches
nothing so the whole table is searched, the second page) and
reports p50/p95/max per filter and overall. The peer in the same run is the JSON API's
``GET /v1/incidents`` with the same filters: the page should cost little more than the data it shows.
The target is a p95 under 200 ms with 100,000 incidents.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from jitsec.broker.config import load_config
from jitsec.broker.keys import key_hash, new_principal_key
from jitsec.broker.runtime import build_broker

from benchmarks.broker_common import broker_process, percentile
from jitsec.kernel.records import Confidence, ResponseAction, Severity
from jitsec.kernel.sightings import Sighting, sighting_id

RULES = ("jitsec-token", "aws-access-key", "github-pat", "generic-password", "slack-token", "private-key")
SOURCES = ("file", "kafka", "git", "elasticsearch", "stream")
SEVERITIES = (Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.LOW)
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
BATCH = 1000
ACKNOWLEDGED = 300


def sighting(n: int, now: float) -> Sighting:
    """The n-th incident's one sighting: spread over rules, sources, severities and 50 agents."""
    fingerprint = "hmac-sha256:" + hashlib.sha256(f"bench-secret-{n}".encode()).hexdigest()
    source, host = SOURCES[n % len(SOURCES)], f"host-{n % 20}"
    location = f"/var/log/agents/run-{n}.log:{n % 997 + 1}"
    return Sighting(
        sighting_id=sighting_id(fingerprint, source, location, host), fingerprint=fingerprint,
        key_id="0123456789abcdef", rule_id=RULES[n % len(RULES)], description="benchmark secret",
        severity=SEVERITIES[n % len(SEVERITIES)], confidence=Confidence.STRUCTURAL,
        preview=f"bench{n % 10}…(40 chars)", location=location, source=source, seen_at=now - n,
        scanner=f"scanner-{n % 4}", host=host,
        action=ResponseAction.REVOKED if n % 3 == 0 else ResponseAction.ALERT_ONLY,
        agent=f"agent-{n % 50}" if n % 3 == 0 else None)


def fill(config: Path, count: int) -> float:
    """Ingest ``count`` incidents into the broker's store; returns incidents per second."""
    broker = build_broker(load_config(config))
    try:
        desk, now = broker.service.incidents, time.time()
        started = time.perf_counter()
        ids: list[str] = []
        for first in range(0, count, BATCH):
            batch = [sighting(n, now) for n in range(first, min(count, first + BATCH))]
            ids += [outcome.incident_id for outcome in desk.ingest(batch, "bench-scanner")]
        rate = count / (time.perf_counter() - started)
        for incident_id in ids[:: max(1, count // ACKNOWLEDGED)]:
            desk.act(incident_id, "ack", "bench-analyst", "benchmark")
        return rate
    finally:
        broker.close()


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
    analyst = new_principal_key()

    def add_analyst(text: str) -> str:
        return text + (f'\n[[principals]]\nname = "bench-analyst"\nrole = "analyst"\n'
                       f'key_sha256 = "{key_hash(analyst)}"\n')

    with broker_process(edit=add_analyst) as (url, _keys, config, _pid):
        rate = fill(config, args.incidents)
        print(f"{args.incidents:,} incidents ingested at {rate:,.0f}/s; {ACKNOWLEDGED} acknowledged")
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
