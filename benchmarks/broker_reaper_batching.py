"""Reaper batching under continuous expiry: passes per expired lease, and issuance with and without the
reaper busy.

    python benchmarks/broker_reaper_batching.py                  # 3,000 leases each phase (~1 min)
    python benchmarks/broker_reaper_batching.py --leases 20000   # closer to a busy production broker

Phase "idle": leases with a long TTL are issued while nothing expires. Phase "busy": as many leases are
issued while the same number, issued before, expire one after another over ``--window`` seconds.
Passes are read from the broker's /metrics (``jitsec_broker_reaper_passes_total``). The peer in the same
run is the same broker with ``coalesce_seconds = 0``: a pass per deadline, the behaviour batching
replaces.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time

import httpx
from broker_common import broker_process, cpu_seconds, report, task_token
from broker_reaper import issue_all

SCOPES = ["reports:read"]


def passes(url: str) -> float:
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith("jitsec_broker_reaper_passes_total "):
            return float(line.split()[1])
    return 0.0


def measure(leases: int, window: int, coalesce: float) -> dict[str, object]:
    def edit(text: str) -> str:
        return text.replace("batch_size = 500", f"batch_size = 500\ncoalesce_seconds = {coalesce}")

    with broker_process(edit=edit) as (url, keys, _, pid):
        token = task_token(url, keys, SCOPES)

        def timed(ttls: list[int]) -> tuple[float, float]:
            cpu, began = cpu_seconds(pid), time.perf_counter()
            asyncio.run(issue_all(url, token, ttls))
            return leases / (time.perf_counter() - began), (cpu_seconds(pid) - cpu) / leases * 1e6

        idle_rate, idle_cpu = timed([900] * leases)
        rng = random.Random(7)
        lead = 3  # seconds before the first expiry, to issue the expiring leases
        expiring = [lead + rng.randrange(window) for _ in range(leases)]
        began = time.time()
        asyncio.run(issue_all(url, token, expiring))
        time.sleep(max(0.0, began + lead - time.time()))
        before = passes(url)
        busy_rate, busy_cpu = timed([900] * leases)
        time.sleep(max(0.0, began + lead + window + 1 - time.time()))  # every expiring lease is due
        time.sleep(1.0)
        reaper_passes = passes(url) - before
    figures = dict(leases=leases, issue_per_s_idle=idle_rate, issue_per_s_busy=busy_rate,
                   cpu_us_per_issue_idle=idle_cpu, cpu_us_per_issue_busy=busy_cpu,
                   reaper_passes=reaper_passes)
    rounded: dict[str, object] = {name: round(value) for name, value in figures.items()}
    return {**rounded, "passes_per_lease": round(reaper_passes / leases, 3)}


PEERS = (("reaper, coalesce 0.05 s (default)", 0.05), ("peer  reaper, coalesce 0 (a pass per deadline)", 0.0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leases", type=int, default=3000, help="leases issued in each phase")
    parser.add_argument("--window", type=int, default=8, help="seconds over which the leases expire")
    options = parser.parse_args()
    for title, coalesce in PEERS:
        report(title, measure(options.leases, options.window, coalesce))


if __name__ == "__main__":
    main()
