"""The PostgreSQL engine and store through the broker's real HTTP API (uvicorn on loopback): the
credential an agent gets works for exactly its scope, dies with its task or its TTL (open sessions
included), survives a database outage in ``revoking`` until the database returns, and two broker
processes share one PostgreSQL store."""

from __future__ import annotations

import hashlib
import logging
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import tomli_w
from jitsec.broker.api.app import create_app
from jitsec.broker.audit import verify
from jitsec.broker.config import parse_config
from jitsec.broker.engines.base import IssueRequest
from jitsec.broker.engines.postgres import PostgresEngine, PostgresEngineConfig
from jitsec.broker.loopback import LoopbackServer
from jitsec.broker.runtime import Broker, build_broker
from jitsec.broker.store.postgres import PostgresStore
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from jitsec.kernel.credential_format import checksum
from jitsec.testing import start_redeemed_task

pytestmark = pytest.mark.postgres

ORCHESTRATOR_KEY = "jitk_" + "0" * 40 + checksum("0" * 40)
AUDIT_KEY = "ab" * 32
BROKER_PROCESS = Path(__file__).with_name("broker_process.py")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def target(fresh_database: str) -> str:
    with psycopg.connect(fresh_database, autocommit=True) as conn:
        conn.execute("CREATE TABLE a (x int); INSERT INTO a VALUES (1), (2); CREATE TABLE b (y int)")
    return str(conninfo_to_dict(fresh_database)["dbname"])


@pytest.fixture
def raw_config(fresh_database: str, postgres_dsn: str, role_prefix: str, target: str,
               as_url: Callable[[str], str]) -> dict[str, Any]:
    return {
        "broker": {"store": as_url(fresh_database), "audit_key": AUDIT_KEY},
        "principals": [{"name": "orchestrator", "role": "orchestrator",
                        "key_sha256": hashlib.sha256(ORCHESTRATOR_KEY.encode()).hexdigest()}],
        "engines": {"postgres": {"admin_dsn": postgres_dsn, "role_prefix": role_prefix,
                                 "default_ttl_seconds": 60, "max_ttl_seconds": 600}},
        "policy": [{"agent": "demo-agent", "max_task_ttl_seconds": 600,
                    "engines": {"postgres": {"scopes": [f"postgres:{target}:public.*:SELECT"]}}}],
        "reaper": {"max_sleep_seconds": 0.1, "retry_base_seconds": 0.1, "retry_cap_seconds": 0.5,
                   "retry_max_attempts": 100_000},
    }


class Served:
    def __init__(self, broker: Broker, http: LoopbackServer) -> None:
        self.broker, self.url, self._http = broker, http.url, http

    def stop(self) -> None:
        self._http.stop()
        self.broker.close()


@pytest.fixture
def serve(role_prefix: str) -> Iterator[Callable[[dict[str, Any]], Served]]:
    """Brokers on loopback; stopped before ``role_prefix`` drops what they left (hence the dependency)."""
    running: list[Served] = []

    def start(raw: dict[str, Any]) -> Served:
        broker = build_broker(parse_config(raw))
        running.append(Served(broker, LoopbackServer(create_app(broker)).start(timeout=20)))
        return running[-1]

    yield start
    for served in running:
        served.stop()


def start_task(url: str, scopes: list[str], ttl: int = 300) -> tuple[str, str]:
    """Start a task for demo-agent and redeem its grant: (task_id, task token)."""
    return start_redeemed_task(url, ORCHESTRATOR_KEY, scopes, task="nightly report", ttl=ttl)


def get_secret(url: str, token: str, scopes: list[str], ttl: int | None = None) -> dict[str, Any]:
    request: dict[str, Any] = {"engine": "postgres", "scopes": scopes}
    if ttl is not None:
        request["ttl_seconds"] = ttl
    response = httpx.post(f"{url}/v1/secrets", headers={"Authorization": f"Bearer {token}"}, json=request,
                          timeout=30)
    assert response.status_code == 201, response.text
    return response.json()


def complete(url: str, task_id: str) -> dict[str, Any]:
    response = httpx.post(f"{url}/v1/tasks/{task_id}/complete", timeout=60,
                          headers={"Authorization": f"Bearer {ORCHESTRATOR_KEY}"})
    assert response.status_code == 200, response.text
    return response.json()


def login(postgres_dsn: str, database: str, secret: dict[str, Any]) -> psycopg.Connection:
    dsn = make_conninfo(postgres_dsn, dbname=database, user=secret["username"], password=secret["secret"])
    return psycopg.connect(dsn, autocommit=True, connect_timeout=5)


def wait_until_login_refused(postgres_dsn: str, database: str, secret: dict[str, Any], within: float) -> None:
    deadline = time.monotonic() + within
    while True:
        try:
            login(postgres_dsn, database, secret).close()
        except psycopg.OperationalError as error:  # NOLOGIN first, then the role is gone
            refusals = ("not permitted to log in", "password authentication failed", "does not exist")
            assert any(refusal in str(error) for refusal in refusals), str(error)
            return
        assert time.monotonic() < deadline, "the credential still logs in"
        time.sleep(0.05)


def test_a_task_credential_works_for_its_scope_and_dies_with_the_task(
    serve: Callable[[dict[str, Any]], Served], raw_config: dict[str, Any], postgres_dsn: str,
    target: str, *, fresh_database: str, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    served = serve(raw_config)
    scope = f"postgres:{target}:public.a:SELECT"
    task_id, token = start_task(served.url, [scope])
    secret = get_secret(served.url, token, [scope])
    assert {"lease_id", "secret", "username", "expires_at", "engine", "scopes"} <= set(secret)
    assert secret["secret"].startswith("jitpg_") and secret["details"]["database"] == target
    session = login(postgres_dsn, target, secret)
    assert session.execute("SELECT count(*) FROM a").fetchone() == (2,)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        session.execute("SELECT * FROM b")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        session.execute("INSERT INTO a VALUES (3)")

    done = complete(served.url, task_id)
    assert (done["revoked"], done["retrying"], done["failed"]) == (2, 0, 0)  # task token + role
    with pytest.raises(psycopg.OperationalError):
        session.execute("SELECT 1")
    session.close()
    wait_until_login_refused(postgres_dsn, target, secret, within=0)

    # The store holds the fingerprint and the role name, never the password.
    with psycopg.connect(fresh_database) as conn:
        dumped = "".join(str(row) for table in ("tasks", "leases", "audit")
                         for row in conn.execute(f"SELECT * FROM jitsec.{table}").fetchall())  # noqa: S608
    assert secret["username"] in dumped and secret["secret"] not in dumped and token not in dumped
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert secret["secret"] not in logged and token not in logged


def test_a_schema_wide_scope_reads_every_table(
    serve: Callable[[dict[str, Any]], Served], raw_config: dict[str, Any], postgres_dsn: str, target: str
) -> None:
    served = serve(raw_config)
    scope = f"postgres:{target}:public.*:SELECT"
    task_id, token = start_task(served.url, [scope])
    secret = get_secret(served.url, token, [scope])
    with login(postgres_dsn, target, secret) as conn:
        assert conn.execute("SELECT (SELECT count(*) FROM a) + (SELECT count(*) FROM b)").fetchone() == (2,)
    complete(served.url, task_id)


def test_the_reaper_revokes_at_ttl_expiry_and_ends_open_sessions(
    serve: Callable[[dict[str, Any]], Served], raw_config: dict[str, Any], postgres_dsn: str, target: str
) -> None:
    served = serve(raw_config)
    scope = f"postgres:{target}:public.a:SELECT"
    _, token = start_task(served.url, [scope])
    secret = get_secret(served.url, token, [scope], ttl=1)
    session = login(postgres_dsn, target, secret)
    assert session.execute("SELECT 1").fetchone() == (1,)
    wait_until_login_refused(postgres_dsn, target, secret, within=10)
    deadline = time.monotonic() + 10
    while True:
        try:
            session.execute("SELECT 1")
        except psycopg.OperationalError:
            break
        assert time.monotonic() < deadline, "the open session survived the lease"
        time.sleep(0.05)
    session.close()


def test_revocation_waits_in_revoking_while_the_database_is_away_even_across_a_restart(
    serve: Callable[[dict[str, Any]], Served], raw_config: dict[str, Any], postgres_dsn: str, target: str,
    *, postgres_proxy, via_proxy: Callable[[str], str],
) -> None:
    raw_config["engines"]["postgres"]["admin_dsn"] = via_proxy(postgres_dsn)
    raw_config["engines"]["postgres"]["connect_timeout_seconds"] = 1
    first = serve(raw_config)
    scope = f"postgres:{target}:public.a:SELECT"
    task_id, token = start_task(first.url, [scope])
    secret = get_secret(first.url, token, [scope])
    postgres_proxy.stop()
    done = complete(first.url, task_id)
    assert (done["revoked"], done["retrying"]) == (1, 1)  # the task token at once, the role later
    time.sleep(1.5)  # several retries fail meanwhile
    lease = first.broker.store.get_lease(secret["lease_id"])
    assert lease is not None and lease.state.value == "revoking" and lease.attempts >= 2
    with login(postgres_dsn, target, secret) as conn:  # honest: it still works while unreachable
        assert conn.execute("SELECT 1").fetchone() == (1,)
    first.stop()  # the broker restarts while the database is away

    second = serve(raw_config)
    time.sleep(0.5)
    lease = second.broker.store.get_lease(secret["lease_id"])
    assert lease is not None and lease.state.value == "revoking"
    postgres_proxy.start()
    wait_until_login_refused(postgres_dsn, target, secret, within=15)
    deadline = time.monotonic() + 10
    while (lease := second.broker.store.get_lease(secret["lease_id"])) and lease.state.value != "revoked":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    kinds = [r.event.kind.value for r in second.broker.store.audit_records(0, 100_000)
             if r.event.lease_id == secret["lease_id"]]
    assert "revoke_retry" in kinds and kinds[-1] == "revoke"


def test_two_broker_processes_on_one_store_issue_and_revoke_without_conflict(
    raw_config: dict[str, Any], tmp_path: Path, postgres_dsn: str, target: str, fresh_database: str,
) -> None:
    config_path = tmp_path / "broker.toml"
    config_path.write_text(tomli_w.dumps(raw_config), encoding="utf-8")
    ports = [free_port(), free_port()]
    processes = [subprocess.Popen([sys.executable, str(BROKER_PROCESS), str(config_path), str(port)],
                                  stdout=subprocess.PIPE, text=True) for port in ports]
    try:
        for process in processes:
            assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        scope = f"postgres:{target}:public.a:SELECT"

        def one_task(i: int) -> dict[str, Any]:
            here, there = urls[i % 2], urls[(i + 1) % 2]
            task_id, token = start_task(here, [scope])
            secrets = [get_secret(url, token, [scope]) for url in (here, there)]
            with login(postgres_dsn, target, secrets[0]) as conn:
                assert conn.execute("SELECT count(*) FROM a").fetchone() == (2,)
            done = complete(there, task_id)
            assert (done["revoked"], done["failed"], done["retrying"]) == (3, 0, 0)
            return secrets[1]

        with ThreadPoolExecutor(4) as pool:
            issued = list(pool.map(one_task, range(12)))
        assert len({s["username"] for s in issued}) == 12
        with psycopg.connect(postgres_dsn) as conn:
            left = conn.execute("SELECT count(*) FROM pg_roles WHERE starts_with(rolname, %s)",
                                (raw_config["engines"]["postgres"]["role_prefix"],)).fetchone()
        assert left == (0,)
    finally:
        for process in processes:
            process.kill()
            process.wait(10)
    store = PostgresStore(fresh_database, bytes.fromhex(AUDIT_KEY))
    records, after = [], 0
    while batch := store.audit_records(after, 1000):
        records.extend(batch)
        after = batch[-1].seq
    store.close()
    result = verify(bytes.fromhex(AUDIT_KEY), records)
    assert result.ok, [p.describe() for p in result.problems]


def test_a_starting_broker_reconciles_orphaned_roles(
    serve: Callable[[dict[str, Any]], Served], raw_config: dict[str, Any], postgres_dsn: str,
    target: str, role_prefix: str,
) -> None:
    raw_config["engines"]["postgres"]["reconcile_grace_seconds"] = 0
    orphan_maker = PostgresEngine(PostgresEngineConfig(admin_dsn=postgres_dsn, role_prefix=role_prefix))
    orphan = orphan_maker.issue(IssueRequest(
        lease_id="lse_lost_in_a_crash", agent="demo-agent", task_id="tsk_x", task_name="crashed",
        scopes=(f"postgres:{target}:public.a:SELECT",), ttl_seconds=300, expires_at=time.time() + 300))
    orphan_maker.close()
    serve(raw_config)
    wait_until_login_refused(postgres_dsn, target, {"username": orphan.username, "secret": orphan.secret},
                             within=10)
