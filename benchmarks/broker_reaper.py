"""Reaper lateness: how long after its expiry each lease is revoked, with many leases expiring at once.

    python benchmarks/broker_reaper.py                             # 2,000 leases over 10 s (~30 s)
    python benchmarks/broker_reaper.py --leases 10000 --window 60  # the full figure (~2 min)

Leases get TTLs spread uniformly over ``--window`` seconds; nobody completes the task, so the reaper
alone revokes them. Lateness = revoked_at - expires_at, read from the store. The peer in the same run
is the same broker with the reaper's sleep ceiling at 1 s instead of 0.2 s: lateness should not
follow it, because the reaper wakes at the next deadline, not on a polling tick.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import time

from broker_common import RawConnection, broker_process, percentile, report, task_token
from jitsec.broker.config import load_config

SCOPES = ["reports:read"]
FIRST_EXPIRY = 5  # seconds after the start, leaving time to issue


async def issue_all(url: str, token: str, ttls: list[int]) -> None:
    connections = [await RawConnection.open(url) for _ in range(16)]
    queue = list(ttls)

    async def worker(connection: RawConnection) -> None:
        while queue:
            ttl = queue.pop()
            request = RawConnection.build(
                "POST",
                "/v1/secrets",
                {"Authorization": f"Bearer {token}"},
                {"engine": "token", "scopes": SCOPES, "ttl_seconds": ttl},
            )
            status, _ = await connection.send(request)
            if status != 201:
                raise RuntimeError(f"issue failed with {status}")

    await asyncio.gather(*(worker(c) for c in connections))
    for connection in connections:
        connection.close()


def measure(leases: int, window: int, max_sleep: float) -> dict[str, object]:
    def edit(text: str) -> str:
        return text.replace("max_sleep_seconds = 0.2", f"max_sleep_seconds = {max_sleep}")

    with broker_process(edit=edit) as (url, keys, config_path, _):
        token = task_token(url, keys, SCOPES)
        rng = random.Random(7)
        ttls = [FIRST_EXPIRY + rng.randrange(window) for _ in range(leases)]
        asyncio.run(issue_all(url, token, ttls))
        database = load_config(config_path).store_url.removeprefix("sqlite://")
        deadline = time.time() + FIRST_EXPIRY + window + 30
        query = "SELECT COUNT(*) FROM leases WHERE engine = 'token' AND state = 'active'"
        with sqlite3.connect(database) as db:
            while db.execute(query).fetchone()[0] and time.time() < deadline:
                time.sleep(0.5)
            rows = db.execute(
                "SELECT revoked_at - expires_at FROM leases WHERE engine = 'token' "
                "AND revoke_reason = 'expired'"
            ).fetchall()
    lateness = [row[0] for row in rows if row[0] is not None]
    return {
        "leases": leases,
        "revoked": len(lateness),
        "p50_ms": round(percentile(lateness, 50) * 1e3, 1),
        "p99_ms": round(percentile(lateness, 99) * 1e3, 1),
        "max_ms": round(max(lateness, default=0) * 1e3, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leases", type=int, default=2000)
    parser.add_argument("--window", type=int, default=10, help="seconds over which the leases expire")
    args = parser.parse_args()
    report("reaper, sleep ceiling 0.2 s (default)", measure(args.leases, args.window, 0.2))
    report("peer  reaper, sleep ceiling 1 s", measure(args.leases, args.window, 1.0))


if __name__ == "__main__":
    main()
