"""`kill -9` of the broker while it revokes a completed task's PostgreSQL credentials (real roles): within
2 s of the restart no credential of the task logs in any more, and no role of it is left behind."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import psycopg
import pytest
from jitsec.broker.engines.postgres_bootstrap import example_scope
from jitsec.broker.engines.postgres_naming import DEFAULT_ROLE_PREFIX
from jitsec.broker.model import LeaseState
from psycopg.conninfo import conninfo_to_dict

from jitsec.testing import fresh_postgres_database, wait_until
from tests.broker_postgres.test_postgres_broker import login

from .conftest import BrokerProcess

pytestmark = pytest.mark.postgres

CREDENTIALS = 40
WITHIN = 2.0  # seconds after the restart


def refused(admin_dsn: str, database: str, secret: dict[str, Any]) -> bool:
    try:
        login(admin_dsn, database, secret).close()
    except psycopg.OperationalError as error:  # NOLOGIN first, then the role is gone
        reasons = ("not permitted to log in", "password authentication failed", "does not exist")
        assert any(reason in str(error) for reason in reasons), str(error)
        return True
    return False


def test_a_crash_mid_completion_leaves_no_credential_working(
    broker_process: Callable[..., BrokerProcess], postgres_dsn: str, role_prefix: str
) -> None:
    with fresh_postgres_database(postgres_dsn, "jitsec_t_faults") as database:
        name = str(conninfo_to_dict(database)["dbname"])
        own_prefix = f'"{role_prefix}"'
        broker = broker_process(postgres=database,
                                edit=lambda text: text.replace(f'"{DEFAULT_ROLE_PREFIX}"', own_prefix))
        try:
            crash_mid_completion(broker, database, name, role_prefix)
        finally:
            broker.stop()


def crash_mid_completion(broker: BrokerProcess, database: str, name: str, role_prefix: str) -> None:
    scope = example_scope(database)
    broker.start()
    task_id, token = broker.start_task(scopes=[scope])

    def one(_: int) -> dict[str, Any]:
        response = httpx.post(f"{broker.url}/v1/secrets", headers={"Authorization": f"Bearer {token}"},
                              json={"engine": "postgres", "scopes": [scope], "ttl_seconds": 600}, timeout=60)
        assert response.status_code == 201, response.text
        return response.json()

    with ThreadPoolExecutor(4) as pool:
        secrets = list(pool.map(one, range(CREDENTIALS)))
    assert not refused(database, name, secrets[0])  # the credentials work before the completion

    def postgres_leases() -> list[LeaseState]:
        return [lease.state for lease in broker.leases(task_id) if lease.engine == "postgres"]

    completion = threading.Thread(target=lambda: _complete_ignoring_the_crash(broker, task_id), daemon=True)
    completion.start()
    assert wait_until(lambda: LeaseState.ACTIVE not in postgres_leases(), timeout=60, interval=0.002)
    broker.kill()
    at_crash = postgres_leases()
    completion.join(timeout=60)
    assert LeaseState.REVOKING in at_crash  # the crash came mid-completion

    broker.start()
    wait_until(lambda: time.time() > broker.ready_at + WITHIN, timeout=WITHIN + 1)
    with ThreadPoolExecutor(8) as pool:
        answers = pool.map(lambda secret: refused(database, name, secret), secrets)
        working = [secret["username"] for secret, no in zip(secrets, answers, strict=True) if not no]
    assert working == [], f"{len(working)} credentials still log in {WITHIN} s after the restart"
    assert wait_until(lambda: set(postgres_leases()) == {LeaseState.REVOKED}, timeout=30)
    with psycopg.connect(database) as conn:
        left = conn.execute("SELECT count(*) FROM pg_roles WHERE starts_with(rolname, %s)",
                            (role_prefix,)).fetchone()
    assert left == (0,)


def _complete_ignoring_the_crash(broker: BrokerProcess, task_id: str) -> None:
    orchestrator = {"Authorization": f"Bearer {broker.keys['orchestrator']}"}
    with contextlib.suppress(httpx.TransportError):  # the broker dies under the request: the fault tested
        httpx.post(f"{broker.url}/v1/tasks/{task_id}/complete", headers=orchestrator, timeout=60)
