"""The loop with the PostgreSQL engine against the real cluster: a leaked ``jitpg_`` password in a
connection URL is revoked (role dropped, sessions ended) and the login fails."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from jitsec.broker.engines.postgres_connections import AdminConnections
from jitsec.broker.engines.postgres_roles import revoke_role
from jitsec.scanner.ruleset import load_ruleset
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from jitsec.testing import AGENT, EmbeddedBroker, LoopScanner, fresh_postgres_database, wait_until

pytestmark = pytest.mark.postgres


@pytest.fixture
def database(postgres_dsn: str) -> Iterator[str]:
    with fresh_postgres_database(postgres_dsn, "jitsec_t_leak") as dsn:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE reports (id int); INSERT INTO reports VALUES (1)")
        yield str(conninfo_to_dict(dsn)["dbname"])


@pytest.fixture
def role_prefix(postgres_dsn: str) -> Iterator[str]:
    prefix = f"jl{uuid.uuid4().hex[:6]}_"
    yield prefix
    connections = AdminConnections(postgres_dsn)
    try:
        with connections.connection() as conn:
            names = [row[0] for row in conn.execute(
                "SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s)", (prefix,)).fetchall()]
        for name in names:
            revoke_role(connections, name, [])
    finally:
        connections.close()


def login(postgres_dsn: str, database: str, user: str, password: str) -> psycopg.Connection:
    dsn = make_conninfo(postgres_dsn, dbname=database, user=user, password=password)
    return psycopg.connect(dsn, autocommit=True, connect_timeout=5)


def test_a_leaked_postgres_password_stops_working(
    tmp_path: Path, postgres_dsn: str, database: str, role_prefix: str
) -> None:
    scope = f"postgres:{database}:public.*:SELECT"
    broker = EmbeddedBroker(
        tmp_path,
        engines={"postgres": {"admin_dsn": postgres_dsn, "role_prefix": role_prefix,
                              "default_ttl_seconds": 60, "max_ttl_seconds": 600}},
        policy_engines={"postgres": {"scopes": [scope]}},
    ).start()
    log = tmp_path / "worker.log"
    log.write_text("")
    loop = LoopScanner(log, broker.url, broker.keys["scanner"], tmp_path / "state",
                       ruleset=load_ruleset(), engine="python").start()
    try:
        service = broker.broker.service
        started = service.start_task("orchestrator", AGENT, "nightly report", [scope], 600)
        caller = service.authenticate_task_token(service.redeem(started.task.task_id, started.grant).token)
        issued = service.issue(caller, "postgres", [scope])
        user, password = issued.lease.username or "", issued.secret
        assert password.startswith("jitpg_")
        session = login(postgres_dsn, database, user, password)
        assert session.execute("SELECT count(*) FROM reports").fetchone() == (1,)
        host = conninfo_to_dict(postgres_dsn).get("host", "127.0.0.1")
        with log.open("a") as out:
            out.write(f"ERROR worker: cannot reach postgresql://{user}:{password}@{host}/{database}\n")
        deadline = time.monotonic() + 20
        refused = False
        while time.monotonic() < deadline and not refused:
            try:
                login(postgres_dsn, database, user, password).close()
                time.sleep(0.05)
            except psycopg.OperationalError:
                refused = True
        assert refused, "the leaked password still logs in"

        def session_ended() -> bool:
            try:
                session.execute("SELECT 1")
            except psycopg.Error:
                return True
            return False

        # the open session is terminated too: the engine refuses new logins (NOLOGIN) a moment before
        # it ends the open sessions, so the refusal above may be seen between the two steps
        assert wait_until(session_ended, max(0.1, deadline - time.monotonic()), interval=0.02)
        while time.monotonic() < deadline and not loop.responder.incidents.snapshot():
            time.sleep(0.01)  # the broker dropped the role before its HTTP answer reached the scanner
        [incident] = loop.responder.incidents.snapshot()
        assert incident.action.value == "revoked" and incident.lease_id == issued.lease.lease_id
    finally:
        loop.close()
        broker.close()
