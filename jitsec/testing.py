"""Test harness shared by the test suite and the benchmarks: clocks, a collecting sink, polling, fresh
PostgreSQL databases and the embedded broker. Product code never imports this module.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from jitsec.embedded import AGENT, EmbeddedBroker, IncidentLog, LoopScanner, wait_inactive
from jitsec.kernel.records import Incident

__all__ = [
    "AGENT",
    "CollectingSink",
    "EmbeddedBroker",
    "IncidentLog",
    "LoopScanner",
    "ManualClock",
    "fresh_postgres_database",
    "wait_inactive",
    "wait_until",
]


class ManualClock:
    """A clock a test moves by hand (``advance``); starts at ``start`` (the real time by default, so
    TTL arithmetic looks normal)."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class CollectingSink:
    """An alert sink that keeps every incident it is sent, in order; thread-safe."""

    name = "collect"

    def __init__(self) -> None:
        self.incidents: list[Incident] = []
        self._lock = threading.Lock()

    def send(self, incident: Incident) -> None:
        with self._lock:
            self.incidents.append(incident)

    def close(self, timeout: float = 5.0) -> None:
        """Nothing is queued."""


def wait_until(predicate: Callable[[], object], timeout: float = 10.0, interval: float = 0.01) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds pass; its last answer as a bool.
    Tests assert outcomes with it, never wall time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


@contextmanager
def fresh_postgres_database(admin_dsn: str, prefix: str = "jitsec_t") -> Iterator[str]:
    """A new, empty database on the server of ``admin_dsn``, dropped (sessions and all) afterwards;
    yields its DSN."""
    import psycopg  # noqa: PLC0415 - only the PostgreSQL tests need it
    from psycopg import sql  # noqa: PLC0415
    from psycopg.conninfo import make_conninfo  # noqa: PLC0415

    name = f"{prefix[:40]}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_dsn, autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_conninfo(admin_dsn, dbname=name)
    finally:
        with psycopg.connect(admin_dsn, autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def start_redeemed_task(url: str, orchestrator_key: str, scopes: list[str], *, agent: str = "demo-agent",
                        task: str = "test task", ttl: int = 300) -> tuple[str, str]:
    """Over a broker's raw HTTP API (no SDK, as a process under test sees it): start a task and
    redeem its grant; returns (task_id, task token). Raises AssertionError naming the refusal."""
    import httpx  # noqa: PLC0415 - only the tests that talk to a served broker need it

    request = {"agent": agent, "task": task, "scopes": scopes, "ttl_seconds": ttl}
    started = httpx.post(f"{url}/v1/tasks", headers={"Authorization": f"Bearer {orchestrator_key}"},
                         timeout=30, json=request)
    assert started.status_code == 201, started.text
    body = started.json()
    redeemed = httpx.post(f"{url}/v1/tasks/{body['task_id']}/redeem", timeout=30,
                          headers={"Authorization": f"Bearer {body['grant']}"})
    assert redeemed.status_code == 200, redeemed.text
    return body["task_id"], redeemed.json()["token"]
