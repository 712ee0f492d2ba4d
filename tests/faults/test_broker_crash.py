"""`kill -9` of the broker with thousands of live leases: after a restart each lease is revoked by its
expiry + 1 s (by the restart + 1 s when it expired while no broker ran), on SQLite and on PostgreSQL,
and the audit chain still verifies."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from jitsec.broker.audit import iter_records, verify
from jitsec.broker.model import Lease, LeaseState
from jitsec.broker.store.registry import open_store

from jitsec.testing import fresh_postgres_database, wait_until

from .conftest import AGENT_SCOPES, BrokerProcess

LEASES = 2000
FIRST_TTL, LAST_TTL = 12, 15  # seconds: leases still live at the crash, expiring after the restart
SLACK = 1.0  # the promise: dead within a second of expiry


def issue(broker: BrokerProcess, token: str, count: int) -> None:
    """``count`` token leases with TTLs spread over [FIRST_TTL, LAST_TTL], eight requests at a time."""

    def some(share: int, offset: int) -> None:
        with httpx.Client(base_url=broker.url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as c:
            for n in range(share):
                ttl = FIRST_TTL + (offset + n * 8) % (LAST_TTL - FIRST_TTL + 1)
                response = c.post("/v1/secrets", json={"engine": "token", "scopes": AGENT_SCOPES,
                                                       "ttl_seconds": ttl})
                assert response.status_code == 201, response.text

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(some, [count // 8 + (i < count % 8) for i in range(8)], range(8)))


def issued(leases: list[Lease]) -> list[Lease]:
    """The token leases the test asked for (not the task's own session lease)."""
    return [lease for lease in leases if lease.engine == "token"]


def states(broker: BrokerProcess, task_id: str) -> set[LeaseState]:
    return {lease.state for lease in issued(broker.leases(task_id))}


class LateWatch:
    """Reads the store every 100 ms while the leases expire: each read starts at ``t`` and must see
    revoked every lease whose deadline (max(expiry, restart) + SLACK) is before ``t``."""

    def __init__(self, broker: BrokerProcess, task_id: str, restarted_at: float) -> None:
        self.late: list[tuple[str, float]] = []
        self._broker, self._task, self._restarted = broker, task_id, restarted_at
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        config = self._broker.config
        store = open_store(config.store_url, config.audit_key)
        try:
            while not self._done.is_set():
                started = time.time()
                for lease in issued(store.leases_of_task(self._task)):
                    deadline = max(lease.expires_at, self._restarted) + SLACK
                    if lease.state is not LeaseState.REVOKED and deadline < started:
                        self.late.append((lease.lease_id, started - deadline))
                self._done.wait(0.1)
        finally:
            store.close()

    def stop(self) -> None:
        self._done.set()
        self._thread.join(timeout=30)


def crash_with_live_leases(broker: BrokerProcess) -> None:
    broker.start()
    task_id, token = broker.start_task()
    issue(broker, token, LEASES)
    leases = issued(broker.leases(task_id))
    assert len(leases) == LEASES
    live = sum(lease.state is LeaseState.ACTIVE for lease in leases)
    assert live >= LEASES // 2  # most still live at the crash (all, unless issuing was very slow)
    broker.kill()
    broker.start()
    watch = LateWatch(broker, task_id, broker.ready_at)
    last_expiry = max(lease.expires_at for lease in leases)
    try:
        assert wait_until(lambda: time.time() > last_expiry + SLACK + 0.5, timeout=LAST_TTL + 30,
                          interval=0.2)
        assert wait_until(lambda: states(broker, task_id) == {LeaseState.REVOKED}, timeout=30, interval=0.5)
    finally:
        watch.stop()
    assert watch.late == [], f"{len(watch.late)} lease reads past their deadline, e.g. {watch.late[:3]}"
    final = issued(broker.leases(task_id))
    assert {lease.revoke_reason for lease in final} == {"expired"}
    config = broker.config
    store = open_store(config.store_url, config.audit_key)
    try:
        result = verify(config.audit_key, iter_records(store))
    finally:
        store.close()
    assert result.ok, [problem.describe() for problem in result.problems]


def test_every_lease_dies_on_time_after_a_crash_over_sqlite(
    broker_process: Callable[..., BrokerProcess],
) -> None:
    crash_with_live_leases(broker_process())


@pytest.mark.postgres
def test_every_lease_dies_on_time_after_a_crash_over_postgresql(
    broker_process: Callable[..., BrokerProcess], postgres_dsn: str, as_url: Callable[[str], str]
) -> None:
    with fresh_postgres_database(postgres_dsn, "jitsec_t_faults") as database:
        broker = broker_process(store=as_url(database))
        try:
            crash_with_live_leases(broker)
        finally:
            broker.stop()  # before the database is dropped
