"""Completing a task that holds many leases (10,000 by default): one HTTP call revokes them all.

    python benchmarks/broker_completion.py                 # 10,000 leases
    python benchmarks/broker_completion.py --leases 2000   # quicker

The peer in the same run is completing a task holding a single lease (the fixed cost of the call).
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import time

import httpx
from broker_common import RawConnection, broker_process, report, run_load
from jitsec.broker.config import load_config

SCOPES = ["reports:read"]


def start(url: str, orchestrator: httpx.Client) -> tuple[str, str]:
    task = {"agent": "demo-agent", "task": "bench", "scopes": SCOPES, "ttl_seconds": 900}
    started = orchestrator.post("/v1/tasks", json=task).json()
    grant = {"Authorization": f"Bearer {started['grant']}"}
    token = httpx.post(f"{url}/v1/tasks/{started['task_id']}/redeem", headers=grant).json()["token"]
    return started["task_id"], token


def fill(url: str, token: str, leases: int) -> None:
    issue = RawConnection.build(
        "POST",
        "/v1/secrets",
        {"Authorization": f"Bearer {token}"},
        {"engine": "token", "scopes": SCOPES, "ttl_seconds": 600},
    )
    asyncio.run(run_load(url, issue, total=leases, concurrency=16))


def complete(orchestrator: httpx.Client, task_id: str) -> tuple[float, dict]:
    began = time.perf_counter()
    response = orchestrator.post(f"/v1/tasks/{task_id}/complete", timeout=120)
    return time.perf_counter() - began, response.json()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leases", type=int, default=10_000)
    args = parser.parse_args()
    with broker_process() as (url, keys, config_path, _):
        orchestrator = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {keys['orchestrator']}"})
        small_task, small_token = start(url, orchestrator)
        fill(url, small_token, 1)
        big_task, big_token = start(url, orchestrator)
        fill(url, big_token, args.leases)
        small_seconds, small = complete(orchestrator, small_task)
        big_seconds, big = complete(orchestrator, big_task)
        database = load_config(config_path).store_url.removeprefix("sqlite://")
        with sqlite3.connect(database) as db:
            active = db.execute(
                "SELECT COUNT(*) FROM leases WHERE task_id = ? AND state != 'revoked'", (big_task,)
            ).fetchone()[0]
        report("peer  complete, 1 lease", {"seconds": round(small_seconds, 3), "revoked": small["revoked"]})
        report(
            f"complete, {args.leases} leases",
            {"seconds": round(big_seconds, 3), "revoked": big["revoked"], "not_revoked_after": active},
        )


if __name__ == "__main__":
    main()
