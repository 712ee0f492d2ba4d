"""Leak-to-revocation latency: a broker-issued token appended to a log file → the credential is dead.

``--credential jwt`` leaks JWT access tokens of the jwt engine instead of ``jit_`` tokens.

The real loop on loopback, in two processes as deployed: a broker (SQLite, token engine, HTTP) in a
child process; in this one, the tail source polling the file, the engine with the full default rule
set, the pipeline and the responder reporting fingerprints over HTTP. For each leak: append one line
holding a fresh live token, then poll the broker's store (read-only, what ``/v1/introspect`` reads)
every millisecond until the lease is no longer live.

Measured in the same run, for comparison: the peer is a direct revocation by lease id over HTTP
(``DELETE /v1/leases/{id}``), the floor the loop cannot beat; the difference is detection (tail
polling, scanning, reporting). ``--in-process`` runs the broker in this process instead (one GIL for
everything: slower, shown for the record).

    python -m benchmarks.leak_latency                      # 500 leaks, one at a time
    python -m benchmarks.leak_latency --leaks 2000 --burst 20 --poll 0.01
    python -m benchmarks.leak_latency --credential jwt --leaks 200
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from jitsec.broker.client import BrokerClient
from jitsec.broker.store.registry import open_store

from jitsec.kernel.credential_format import sha256_fingerprint
from jitsec.testing import AGENT, EmbeddedBroker, LoopScanner

TOKENS_PER_TASK = 50


def broker_options(credential: str, directory: Path) -> dict[str, Any]:
    """What ``EmbeddedBroker`` needs to issue ``--credential`` kinds beyond the token engine it has."""
    if credential == "jwt":
        return {"engines": {"jwt": {"keys": str(directory / "jwt-keys")}},
                "policy_engines": {"jwt": {"scopes": ["reports:read"]}}}
    return {}


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))]


def summary(values: list[float]) -> dict[str, float]:
    return {"n": len(values), "p50_ms": round(percentile(values, 0.5), 1),
            "p90_ms": round(percentile(values, 0.9), 1), "p99_ms": round(percentile(values, 0.99), 1),
            "max_ms": round(max(values), 1), "mean_ms": round(statistics.fmean(values), 1)}


def serve_broker(directory: Path, credential: str) -> None:
    """Child process: run an embedded broker, print how to reach it, serve until stdin closes."""
    broker = EmbeddedBroker(directory, **broker_options(credential, directory)).start()
    print(json.dumps({"url": broker.url, "keys": broker.keys, "store": broker.broker.config.store_url,
                      "audit_key": broker.broker.config.audit_key.hex()}), flush=True)
    sys.stdin.read()
    broker.close()


def issue_tokens(url: str, orchestrator_key: str, count: int,
                 credential: str = "token") -> list[tuple[str, str]]:
    """``count`` live tokens and their lease ids, through the HTTP API (setup, not measured)."""
    out: list[tuple[str, str]] = []
    with BrokerClient(url, key=orchestrator_key) as orchestrator, BrokerClient(url) as agent:
        while len(out) < count:
            task = orchestrator.start_task(AGENT, "benchmark", ["reports:read"], ttl_seconds=900)
            token, _ = agent.redeem(task.task_id, task.grant)
            for _ in range(min(TOKENS_PER_TASK, count - len(out))):
                body = agent.request("POST", "/v1/secrets", bearer=token,
                                     json={"engine": credential, "scopes": ["reports:read"]})
                out.append((body["secret"], body["lease_id"]))
    return out


def wait_dead(store: Any, sha256s: list[str], timeout: float) -> dict[str, float]:
    """Monotonic time each fingerprint's lease was first seen not live (polled every millisecond)."""
    dead: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    while len(dead) < len(sha256s) and time.monotonic() < deadline:
        for sha in sha256s:
            if sha not in dead:
                lease = store.lease_by_fingerprint(sha)
                if lease is not None and not lease.is_live(time.time()):
                    dead[sha] = time.monotonic()
        time.sleep(0.001)
    return dead


def run(leaks: int, *, burst: int, poll: float, engine: str, timeout: float,
        in_process: bool, credential: str = "token") -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="jitsec-leak-bench-") as tmp:
        directory = Path(tmp)
        child: subprocess.Popen[str] | None = None
        embedded: EmbeddedBroker | None = None
        if in_process:
            embedded = EmbeddedBroker(directory, **broker_options(credential, directory)).start()
            info = {"url": embedded.url, "keys": embedded.keys, "store": embedded.broker.config.store_url,
                    "audit_key": embedded.broker.config.audit_key.hex()}
        else:
            child = subprocess.Popen([sys.executable, "-m", "benchmarks.leak_latency", "--serve-broker", tmp,
                                      "--credential", credential],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            assert child.stdout is not None
            info = json.loads(child.stdout.readline())
        store = open_store(info["store"], bytes.fromhex(info["audit_key"]))
        log = directory / "app.log"
        log.write_text("")
        loop = LoopScanner(log, info["url"], info["keys"]["scanner"], directory / "state",
                           poll_interval=poll, engine=engine).start()  # type: ignore[arg-type]
        try:
            tokens = issue_tokens(info["url"], info["keys"]["orchestrator"], leaks + 50, credential)
            leaked, peers = tokens[:leaks], tokens[leaks:]
            loop_ms: list[float] = []
            for start in range(0, leaks, burst):
                batch = leaked[start:start + burst]
                lines = "".join(f'{{"level":"debug","msg":"calling reports","auth":"Bearer {token}"}}\n'
                                for token, _ in batch)
                written = time.monotonic()
                with log.open("a", encoding="utf-8") as out:
                    out.write(lines)
                dead = wait_dead(store, [sha256_fingerprint(token) for token, _ in batch], timeout)
                loop_ms.extend((at - written) * 1000 for at in dead.values())
            detect = [i.latency_ms for i in loop.responder.incidents.snapshot() if i.latency_ms is not None]
            direct_ms = []
            with BrokerClient(info["url"], key=info["keys"]["admin"]) as admin:
                for _, lease_id in peers:
                    began = time.monotonic()
                    admin.revoke_lease(lease_id)
                    direct_ms.append((time.monotonic() - began) * 1000)
            revoked = sum(1 for _, lease_id in leaked if store.get_lease(lease_id).revoke_reason == "leak")
            matcher = loop.scanner.engine
        finally:
            loop.close()
            store.close()
            if embedded is not None:
                embedded.close()
            if child is not None:
                child.communicate("", timeout=30)
    return {
        "leaks": leaks, "credential": credential, "burst": burst, "poll_interval_s": poll, "matcher": matcher,
        "broker": "in-process" if in_process else "separate process",
        "revoked_by_leak": revoked, "missed": leaks - len(loop_ms),
        "leak_to_dead": summary(loop_ms) if loop_ms else None,
        "read_to_revoked": summary(detect) if detect else None,
        "peer_direct_revoke_http": summary(direct_ms),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leaks", type=int, default=500, help="number of leaked tokens (default 500)")
    parser.add_argument("--burst", type=int, default=1, help="tokens appended per write (default 1)")
    parser.add_argument("--poll", type=float, default=0.05,
                        help="tail poll interval in seconds (default 0.05, the tail source's default)")
    parser.add_argument("--engine", choices=["auto", "hyperscan", "python"], default="auto")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait per burst")
    parser.add_argument("--in-process", action="store_true", help="run the broker in this process")
    parser.add_argument("--credential", choices=["token", "jwt"], default="token",
                        help="what leaks: a jit_ token (default) or a JWT access token of the jwt engine")
    parser.add_argument("--json", action="store_true", help="print JSON only")
    parser.add_argument("--serve-broker", metavar="DIR", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_broker:
        serve_broker(Path(args.serve_broker), args.credential)
        return 0
    if args.leaks < 1 or args.burst < 1:
        parser.error("--leaks and --burst must be positive")
    result = run(args.leaks, burst=args.burst, poll=args.poll, engine=args.engine, timeout=args.timeout,
                 in_process=args.in_process, credential=args.credential)
    ok = result["revoked_by_leak"] == args.leaks
    if args.json:
        print(json.dumps(result, indent=2))
        return 0 if ok else 1
    print(f"leak-to-revocation over {result['leaks']} leaked {args.credential}s "
          f"(burst {result['burst']}, tail poll "
          f"{result['poll_interval_s']} s, {result['matcher']} matcher, broker {result['broker']}); "
          f"revoked {result['revoked_by_leak']}, missed {result['missed']}")
    for label, key in (("append → lease dead (the loop)", "leak_to_dead"),
                       ("line read → broker confirmed", "read_to_revoked"),
                       ("peer: DELETE /v1/leases/{id}", "peer_direct_revoke_http")):
        figures = result[key]
        if isinstance(figures, dict):
            print(f"  {label:32s} p50 {figures['p50_ms']:7.1f} ms  p90 {figures['p90_ms']:7.1f} ms  "
                  f"p99 {figures['p99_ms']:7.1f} ms  max {figures['max_ms']:7.1f} ms")
    print("targets: p50 < 200 ms, p99 < 1000 ms (append → lease dead)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
