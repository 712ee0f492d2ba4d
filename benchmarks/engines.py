"""Issuance and revocation per second for each engine, through the real HTTP API of `jitsec broker serve`.

    python -m benchmarks.engines                          # every engine whose service is here, 3 runs
    python -m benchmarks.engines --engine jwt --engine token --requests 3000 --runs 5

One broker process serves every engine measured (the config `jitsec broker init` writes, plus each
engine's own sections). Per run and engine: ``--requests`` ``POST /v1/secrets`` over ``--concurrency``
keep-alive connections (issues/s), then a ``DELETE /v1/leases/{id}`` of each of them (revocations/s);
the median of ``--runs`` runs is printed. Engines take turns within a run, so a busy machine weighs on
all of them alike: the ``token`` engine (a random string, no signature) is the peer the others are
read against. The load generator shares the machine with the broker: figures are a lower bound.
"CPU-bound issues/s" is one core divided by the broker's own CPU time per issue (from /proc): the rate
it could sustain with a core to itself, which depends less on what else the machine runs.

Adding an engine is one entry in ``ENGINES``: the scopes to ask for, what to add to the config, and
what it needs to run (a reason to skip it when that is missing).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from benchmarks.broker_common import RawConnection, broker_process, cpu_seconds, start_task


@dataclass(frozen=True)
class EngineSetup:
    """``config`` is TOML appended to the `jitsec broker init` config (its ``[engines.X]`` section),
    ``policy`` the ``[policy.engines.X]`` table that lets demo-agent use it (both empty when the
    example config has them); ``missing`` says why it cannot run here (None: it can)."""

    scopes: list[str]
    config: str = ""
    policy: str = ""
    missing: Callable[[], str | None] = field(default=lambda: None)


ENGINES: dict[str, EngineSetup] = {
    "token": EngineSetup(scopes=["reports:read"]),
    "jwt": EngineSetup(scopes=["reports:read"]),
}


def edit_config(engines: list[str]) -> Callable[[str], str]:
    """Each engine's sections: an engine table before the principals, a policy table after demo-agent's."""

    def edit(text: str) -> str:
        for name in engines:
            setup = ENGINES[name]
            if setup.config:
                text = text.replace("[[principals]]", setup.config.strip() + "\n\n[[principals]]", 1)
            if setup.policy:
                anchor = "[policy.engines.token]"
                text = text.replace(anchor, setup.policy.strip() + "\n\n" + anchor, 1)
        return text

    return edit


def issue_request(token: str, engine: str) -> bytes:
    return RawConnection.build("POST", "/v1/secrets", {"Authorization": f"Bearer {token}"},
                               {"engine": engine, "scopes": ENGINES[engine].scopes, "ttl_seconds": 600})


async def issue_all(url: str, request: bytes, total: int, concurrency: int) -> tuple[float, list[str]]:
    """``total`` copies of an issue ``request`` over ``concurrency`` connections: (seconds, lease ids)."""
    connections = [await RawConnection.open(url) for _ in range(concurrency)]
    leases: list[str] = []
    remaining = total

    async def worker(connection: RawConnection) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            status, body = await connection.send(request)
            if status != 201:
                raise RuntimeError(f"issue answered {status}: {body[:200]!r}")
            leases.append(json.loads(body)["lease_id"])

    began = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in connections))
    elapsed = time.perf_counter() - began
    for connection in connections:
        connection.close()
    return elapsed, leases


async def revoke_all(url: str, token: str, leases: list[str], concurrency: int) -> float:
    """Revoke every lease as its agent (``DELETE /v1/leases/{id}``): seconds."""
    headers = {"Authorization": f"Bearer {token}"}
    pending = list(leases)
    connections = [await RawConnection.open(url) for _ in range(concurrency)]

    async def worker(connection: RawConnection) -> None:
        while pending:
            lease = pending.pop()
            request = RawConnection.build("DELETE", f"/v1/leases/{lease}", headers, None)
            status, body = await connection.send(request)
            if status != 200:
                raise RuntimeError(f"revoke answered {status}: {body[:200]!r}")

    began = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in connections))
    elapsed = time.perf_counter() - began
    for connection in connections:
        connection.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", action="append", choices=sorted(ENGINES),
                        help="repeatable (default: all)")
    parser.add_argument("--requests", type=int, default=2000, help="credentials per engine and run")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    engines = []
    for name in args.engine or list(ENGINES):
        reason = ENGINES[name].missing()
        if reason:
            print(f"{name}: skipped ({reason})")
        else:
            engines.append(name)
    rates: dict[str, dict[str, list[float]]] = {
        name: {"issue": [], "revoke": [], "issue_cpu": [], "revoke_cpu": []} for name in engines}
    with broker_process(edit=edit_config(engines)) as (url, keys, _, pid):
        for run in range(args.runs):
            for name in engines:
                _, token = start_task(url, keys, ENGINES[name].scopes)
                request = issue_request(token, name)
                asyncio.run(issue_all(url, request, min(200, args.requests), args.concurrency))  # warm-up
                cpu = cpu_seconds(pid)
                issued_in, leases = asyncio.run(issue_all(url, request, args.requests, args.concurrency))
                cpu_issued = cpu_seconds(pid)
                revoked_in = asyncio.run(revoke_all(url, token, leases, args.concurrency))
                figures = rates[name]
                figures["issue"].append(args.requests / issued_in)
                figures["revoke"].append(args.requests / revoked_in)
                figures["issue_cpu"].append((cpu_issued - cpu) / args.requests * 1e6)
                figures["revoke_cpu"].append((cpu_seconds(pid) - cpu_issued) / args.requests * 1e6)
                print(f"run {run + 1} {name}: {args.requests / issued_in:,.0f} issues/s, "
                      f"{args.requests / revoked_in:,.0f} revocations/s")
    print(f"\nmedian of {args.runs} runs, {args.requests} credentials, {args.concurrency} connections, "
          f"1 worker, load {os.getloadavg()[0]:.1f}; broker CPU µs per operation (from /proc, whatever "
          "else runs):")
    print(f"{'engine':<10} {'issues/s':>10} {'revocations/s':>14} {'issue CPU µs':>13} {'revoke CPU µs':>14} "
          f"{'CPU-bound issues/s':>19}")
    for name in engines:
        median = {key: statistics.median(values) for key, values in rates[name].items()}
        print(f"{name:<10} {median['issue']:>10,.0f} {median['revoke']:>14,.0f} "
              f"{median['issue_cpu']:>13,.0f} {median['revoke_cpu']:>14,.0f} "
              f"{1e6 / median['issue_cpu']:>19,.0f}")


if __name__ == "__main__":
    main()
