"""Token issuance over HTTP with concurrency: issues/s and latency p50/p99, next to a bare HTTP peer.

    python benchmarks/broker_issuance.py                      # short default run (~10 s)
    python benchmarks/broker_issuance.py --requests 20000 --concurrency 32 --workers 2

The peer in the same run is ``GET /healthz`` on the same server and client: the floor that HTTP,
uvicorn and the load generator cost before the broker does any work. The load generator shares the
machine's cores with the broker, so figures are a lower bound of what a separate client would see.
``broker_cpu_us`` is the broker processes' own CPU time per request (from /proc), which does not depend
on what else the machine runs; ``cpu_bound_per_second`` = usable cores (workers, at most the
machine's) / that: the rate the broker could sustain with the cores to itself.
"""

from __future__ import annotations

import argparse
import asyncio
import os

import httpx
from broker_common import RawConnection, broker_process, cpu_seconds, figures, report, run_load

SCOPES = ["reports:read"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes of the broker")
    args = parser.parse_args()
    load = {"total": args.requests, "concurrency": args.concurrency}
    with broker_process(workers=args.workers) as (url, keys, _, pid):
        orchestrator = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {keys['orchestrator']}"})
        task = {"agent": "demo-agent", "task": "bench", "scopes": SCOPES, "ttl_seconds": 900}
        started = orchestrator.post("/v1/tasks", json=task).json()
        grant = {"Authorization": f"Bearer {started['grant']}"}
        token = httpx.post(f"{url}/v1/tasks/{started['task_id']}/redeem", headers=grant).json()["token"]
        health = RawConnection.build("GET", "/healthz", {}, None)
        issue = RawConnection.build(
            "POST",
            "/v1/secrets",
            {"Authorization": f"Bearer {token}"},
            {"engine": "token", "scopes": SCOPES, "ttl_seconds": 600},
        )
        asyncio.run(run_load(url, health, total=500, concurrency=args.concurrency))  # warm up
        cpu_before = cpu_seconds(pid)
        peer = asyncio.run(run_load(url, health, **load))
        cpu_peer = cpu_seconds(pid)
        issued = asyncio.run(run_load(url, issue, **load))
        cpu_issue = cpu_seconds(pid)
        where = f"workers={args.workers}, concurrency={args.concurrency}"
        per_peer = (cpu_peer - cpu_before) / args.requests
        per_issue = (cpu_issue - cpu_peer) / args.requests
        report(
            f"peer  GET /healthz     ({where})",
            {**figures(args.requests, *peer), "broker_cpu_us": round(per_peer * 1e6)},
        )
        report(
            f"issue POST /v1/secrets ({where})",
            {
                **figures(args.requests, *issued),
                "broker_cpu_us": round(per_issue * 1e6),
                "cpu_bound_per_second": round(min(args.workers, os.cpu_count() or 1) / per_issue),
            },
        )
        orchestrator.post(f"/v1/tasks/{started['task_id']}/complete")


if __name__ == "__main__":
    main()
