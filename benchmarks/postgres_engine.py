"""PostgreSQL engine: credentials issued and revoked per second, and complete → "login refused" latency.

Against the real cluster (``--dsn``, default ``$JITSEC_TEST_POSTGRES_DSN`` from ``scripts/services``):

1. issue: ``PostgresEngine.issue`` with ``--concurrency`` threads (CREATE ROLE with a SCRAM verifier,
   VALID UNTIL, CONNECTION LIMIT, COMMENT, GRANT CONNECT/USAGE/SELECT in one transaction);
2. revoke: ``PostgresEngine.revoke`` of all of them (NOLOGIN, terminate sessions, REASSIGN/DROP OWNED,
   DROP ROLE, confirm);
3. peer, same run and same threads: the bare minimum (CREATE ROLE … LOGIN PASSWORD with the same kind
   of SCRAM verifier + one GRANT; DROP OWNED + DROP ROLE): no expiry, no connection limit, no session
   termination, no confirmation, no serialisation (it retries "tuple concurrently updated") — the
   floor the safe procedure is compared against;
4. latency through the broker's HTTP API (uvicorn on loopback, SQLite store): for each of ``--tasks``
   tasks an agent holds a PostgreSQL credential with an OPEN session; the time from sending
   ``POST /v1/tasks/{id}/complete`` until a fresh login with that credential is refused, p50/p99.

    python -m benchmarks.postgres_engine                       # 300 credentials, 4 threads, 50 tasks
    python -m benchmarks.postgres_engine --count 2000 --concurrency 8 --tasks 200
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import httpx
import psycopg
from jitsec.broker.api.app import create_app
from jitsec.broker.config import parse_config
from jitsec.broker.engines.base import IssueRequest
from jitsec.broker.engines.postgres import PostgresEngine, PostgresEngineConfig
from jitsec.broker.engines.postgres_connections import AdminConnections
from jitsec.broker.engines.postgres_roles import revoke_role
from jitsec.broker.engines.postgres_scram import DEFAULT_ITERATIONS, scram_sha256_verifier
from jitsec.broker.loopback import LoopbackServer
from jitsec.broker.runtime import build_broker
from psycopg import sql
from psycopg.conninfo import make_conninfo

from jitsec.kernel.credential_format import CredentialKind, checksum, mint

PREFIX = "jitbench_"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))]


def drop_bench_roles(dsn: str) -> None:
    """Drop every role under the benchmark's prefix (leftovers of an interrupted run)."""
    connections = AdminConnections(dsn)
    try:
        with connections.connection() as conn:
            names = [r[0] for r in conn.execute("SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s)",
                                                (PREFIX,)).fetchall()]
        for name in names:
            revoke_role(connections, name, [])
    finally:
        connections.close()


@contextmanager
def bench_database(dsn: str) -> Iterator[str]:
    name = f"jitsec_bench_{uuid.uuid4().hex[:8]}"
    drop_bench_roles(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        with psycopg.connect(make_conninfo(dsn, dbname=name), autocommit=True) as conn:
            conn.execute("CREATE TABLE orders (id int PRIMARY KEY, total numeric)")
            conn.execute("INSERT INTO orders SELECT g, g * 1.5 FROM generate_series(1, 100) g")
        yield name
    finally:
        drop_bench_roles(dsn)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def timed(work: Callable[[int], object], count: int, concurrency: int) -> float:
    """Run ``work(i)`` for i in range(count) on ``concurrency`` threads; operations per second."""
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(work, range(count)))
    return count / (time.perf_counter() - started)


def engine_throughput(dsn: str, database: str, count: int, concurrency: int,
                      iterations: int) -> dict[str, float]:
    config = PostgresEngineConfig(admin_dsn=dsn, role_prefix=PREFIX, scram_iterations=iterations)
    engine = PostgresEngine(config)
    scope = f"postgres:{database}:public.orders:SELECT"
    handles: list[str] = [""] * count

    def issue(i: int) -> None:
        handles[i] = engine.issue(IssueRequest(
            lease_id=f"lse_bench_{i}", agent="bench-agent", task_id="tsk_bench", task_name="bench",
            scopes=(scope,), ttl_seconds=600, expires_at=time.time() + 600)).handle

    try:
        issue_rate = timed(issue, count, concurrency)
        revoke_rate = timed(lambda i: engine.revoke(handles[i]), count, concurrency)
    finally:
        engine.close()
    return {"issue_per_s": issue_rate, "revoke_per_s": revoke_rate}


def peer_throughput(dsn: str, database: str, count: int, concurrency: int,
                    iterations: int) -> dict[str, float]:
    """The bare floor: CREATE ROLE with a SCRAM verifier + one GRANT; DROP OWNED + DROP ROLE."""
    local = threading.local()
    target = make_conninfo(dsn, dbname=database)

    def conn() -> psycopg.Connection:
        if not hasattr(local, "conn"):
            local.conn = psycopg.connect(target, autocommit=True)
            opened.append(local.conn)
        return local.conn

    opened: list[psycopg.Connection] = []
    names = [f"{PREFIX}peer_{i}" for i in range(count)]

    def retrying(statements: Callable[[psycopg.Connection], None]) -> None:
        # Concurrent GRANT/REVOKE on one table fail with "tuple concurrently updated" (the engine
        # queues them behind an advisory lock instead); the peer simply retries.
        while True:
            try:
                with conn().transaction():
                    statements(conn())
                return
            except psycopg.errors.InternalError:
                retries.append(1)

    def create(i: int) -> None:
        role = sql.Identifier(names[i])

        def statements(c: psycopg.Connection) -> None:
            verifier = scram_sha256_verifier(mint(CredentialKind.POSTGRES_PASSWORD), iterations=iterations)
            c.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(role, sql.Literal(verifier)))
            c.execute(sql.SQL("GRANT SELECT ON public.orders TO {}").format(role))

        retrying(statements)

    def drop(i: int) -> None:
        role = sql.Identifier(names[i])

        def statements(c: psycopg.Connection) -> None:
            c.execute(sql.SQL("DROP OWNED BY {}").format(role))
            c.execute(sql.SQL("DROP ROLE {}").format(role))

        retrying(statements)

    retries: list[int] = []

    try:
        create_rate = timed(create, count, concurrency)
        drop_rate = timed(drop, count, concurrency)
    finally:
        for connection in opened:
            connection.close()
    return {"issue_per_s": create_rate, "revoke_per_s": drop_rate, "retries": float(len(retries))}


def complete_to_refused(dsn: str, database: str, tasks: int) -> list[float]:
    """Seconds from sending ``complete`` to the first refused login, one task at a time."""
    key = CredentialKind.PRINCIPAL_KEY.prefix + "1" * 40 + checksum("1" * 40)
    with tempfile.TemporaryDirectory() as tmp:
        raw: dict[str, Any] = {
            "broker": {"store": f"sqlite:///{tmp}/broker.db", "audit_key": "cd" * 32},
            "principals": [{"name": "orchestrator", "role": "orchestrator",
                            "key_sha256": hashlib.sha256(key.encode()).hexdigest()}],
            "engines": {"postgres": {"admin_dsn": dsn, "role_prefix": PREFIX}},
            "policy": [{"agent": "bench-agent", "engines": {
                "postgres": {"scopes": [f"postgres:{database}:public.*:SELECT"]}}}],
        }
        broker = build_broker(parse_config(raw))
        http = LoopbackServer(create_app(broker)).start()
        scope = f"postgres:{database}:public.orders:SELECT"
        latencies: list[float] = []
        try:
            with httpx.Client(base_url=http.url, timeout=30) as client:
                for _ in range(tasks):
                    latencies.append(_one_task(client, key, scope, dsn, database))
        finally:
            http.stop()
            broker.close()
    return latencies


def _one_task(client: httpx.Client, key: str, scope: str, dsn: str, database: str) -> float:
    started = client.post("/v1/tasks", headers={"Authorization": f"Bearer {key}"},
                          json={"agent": "bench-agent", "task": "bench", "scopes": [scope]}).json()
    token = client.post(f"/v1/tasks/{started['task_id']}/redeem",
                        headers={"Authorization": f"Bearer {started['grant']}"}).json()["token"]
    secret = client.post("/v1/secrets", headers={"Authorization": f"Bearer {token}"},
                         json={"engine": "postgres", "scopes": [scope]}).json()
    login = make_conninfo(dsn, dbname=database, user=secret["username"], password=secret["secret"])
    session = psycopg.connect(login, autocommit=True)
    session.execute("SELECT count(*) FROM orders")
    t0 = time.perf_counter()
    client.post(f"/v1/tasks/{started['task_id']}/complete", headers={"Authorization": f"Bearer {key}"})
    while True:
        try:
            psycopg.connect(login, connect_timeout=5).close()
        except psycopg.OperationalError:
            elapsed = time.perf_counter() - t0
            break
    try:
        session.execute("SELECT 1")
        raise SystemExit("an open session survived task completion")
    except psycopg.OperationalError:
        session.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", default=os.environ.get("JITSEC_TEST_POSTGRES_DSN"),
                        help="superuser DSN (default: $JITSEC_TEST_POSTGRES_DSN)")
    parser.add_argument("--count", type=int, default=300, help="credentials issued then revoked")
    parser.add_argument("--concurrency", type=int, default=4, help="threads issuing / revoking")
    parser.add_argument("--tasks", type=int, default=50, help="tasks for the complete → refused latency")
    parser.add_argument("--scram-iterations", type=int, default=DEFAULT_ITERATIONS,
                        help="PBKDF2 iterations of the verifiers (engine and peer)")
    args = parser.parse_args()
    if not args.dsn:
        raise SystemExit("no DSN: run `eval \"$(scripts/services start postgres)\"` or pass --dsn")
    with bench_database(args.dsn) as database:
        ours = engine_throughput(args.dsn, database, args.count, args.concurrency, args.scram_iterations)
        peer = peer_throughput(args.dsn, database, args.count, args.concurrency, args.scram_iterations)
        latencies = complete_to_refused(args.dsn, database, args.tasks)
    print(f"PostgreSQL engine, {args.count} credentials, {args.concurrency} threads, "
          f"SCRAM iterations {args.scram_iterations}")
    print(f"  issue  : {ours['issue_per_s']:8.1f}/s   "
          f"(peer, bare CREATE ROLE + GRANT: {peer['issue_per_s']:8.1f}/s)")
    print(f"  revoke : {ours['revoke_per_s']:8.1f}/s   "
          f"(peer, bare DROP OWNED + DROP ROLE: {peer['revoke_per_s']:8.1f}/s)")
    print(f"  the peer retried {peer['retries']:.0f} transaction(s) after 'tuple concurrently updated'")
    print(f"complete → login refused, {len(latencies)} tasks each holding an open session, via HTTP:")
    p50, p99 = percentile(latencies, 0.5) * 1000, percentile(latencies, 0.99) * 1000
    print(f"  p50 {p50:7.1f} ms   p99 {p99:7.1f} ms   mean {statistics.fmean(latencies) * 1000:7.1f} ms")

if __name__ == "__main__":
    main()
