"""The PostgreSQL store: the same contract as SQLite, plus what several broker processes need —
one audit chain with many writers, compare-and-set revocation, and one reaper at a time with failover."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from jitsec.broker.audit import Tamper, verify
from jitsec.broker.lifecycle import RevocationUpdate, Step
from jitsec.broker.model import AuditEvent, AuditKind, Lease, LeaseState, Task
from jitsec.broker.store.base import IN_FLIGHT_SECONDS, Store
from jitsec.broker.store.postgres import PostgresStore, open_postgres
from jitsec.broker.store.registry import open_store
from psycopg.conninfo import conninfo_to_dict

pytestmark = pytest.mark.postgres

KEY = bytes(range(32))
WORKER = Path(__file__).with_name("store_worker.py")


@pytest.fixture
def open_pg(fresh_database: str) -> Iterator[Callable[..., PostgresStore]]:
    stores: list[PostgresStore] = []

    def build(dsn: str = fresh_database) -> PostgresStore:
        store = PostgresStore(dsn, KEY)
        store.migrate()
        stores.append(store)
        return store

    yield build
    for store in stores:
        store.close()


@pytest.fixture
def store(open_pg: Callable[..., PostgresStore]) -> PostgresStore:
    return open_pg()


def uid(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def a_task(agent: str = "agent", expires_at: float = 2e9) -> Task:
    return Task(task_id=uid("tsk"), agent=agent, name="nightly", scopes=("reports:read",), created_at=1.0,
                expires_at=expires_at, grant_sha256=uuid.uuid4().hex * 2, grant_expires_at=2e9,
                created_by="orc")


def a_lease(task: Task, expires_at: float = 2e9, **changes: object) -> Lease:
    values: dict[str, object] = dict(
        lease_id=uid("lse"), task_id=task.task_id, agent=task.agent, engine="postgres",
        scopes=("postgres:db:public.a:SELECT",), issued_at=1.0, expires_at=expires_at,
        fingerprint=uuid.uuid4().hex * 2, handle='{"role":"r","database":"db"}', username="r")
    values.update(changes)
    return Lease(**values)  # type: ignore[arg-type]


def event(kind: AuditKind = AuditKind.ISSUE, **fields: object) -> AuditEvent:
    return AuditEvent(kind=kind, at=time.time(), **fields)  # type: ignore[arg-type]


def test_the_registry_opens_postgresql_urls_and_migrate_is_idempotent(fresh_database: str) -> None:
    parts = conninfo_to_dict(fresh_database)
    url = (f"postgresql://{parts['user']}:{parts['password']}@{parts['host']}:{parts['port']}/"
           f"{parts['dbname']}")
    store = open_store(url, KEY)
    assert isinstance(store, PostgresStore) and isinstance(store, Store)
    store.migrate()
    store.close()
    with pytest.raises(ValueError, match="needs a host"):
        open_postgres("postgresql://", KEY)
    first = PostgresStore(fresh_database, KEY)
    first.migrate()
    first.migrate()
    with psycopg.connect(fresh_database) as conn:
        assert conn.execute("SELECT max(version) FROM jitsec.schema_version").fetchone() == (1,)
    first.close()


def test_a_grant_is_redeemed_once_and_a_task_completes_once(store: PostgresStore) -> None:
    task = a_task(agent=uid("agent"))
    store.create_task(task, event(AuditKind.TASK_START, task_id=task.task_id))
    assert store.get_task(task.task_id) == task
    token = a_lease(task, engine="task-token")
    assert store.redeem_grant(task.task_id, 5.0, token, event(AuditKind.REDEEM)) is True
    assert store.redeem_grant(task.task_id, 6.0, a_lease(task), event(AuditKind.REDEEM)) is False
    assert store.get_task(task.task_id).redeemed_at == 5.0  # type: ignore[union-attr]
    assert [t.task_id for t in store.open_tasks_of_agent(task.agent, 10.0)] == [task.task_id]
    assert store.complete_task(task.task_id, 7.0, event(AuditKind.TASK_COMPLETE)) is True
    assert store.complete_task(task.task_id, 8.0, event(AuditKind.TASK_COMPLETE)) is False
    assert store.open_tasks_of_agent(task.agent, 10.0) == []


def test_leases_are_found_by_id_fingerprint_task_agent_and_expiry(store: PostgresStore) -> None:
    task = a_task(agent=uid("agent"))
    store.create_task(task, event())
    soon, later = a_lease(task, expires_at=100.0), a_lease(task, expires_at=3e9)
    for lease in (soon, later):
        store.add_lease(lease, event(lease_id=lease.lease_id))
    assert store.get_lease(soon.lease_id) == soon
    assert store.lease_by_fingerprint(later.fingerprint.upper()) == later
    assert {lease.lease_id for lease in store.leases_of_task(task.task_id)} == {soon.lease_id, later.lease_id}
    assert store.leases_of_agent(task.agent, [LeaseState.REVOKED]) == []
    assert soon.lease_id in {lease.lease_id for lease in store.leases_due(150.0, 10_000)}
    assert later.lease_id not in {lease.lease_id for lease in store.leases_due(150.0, 10_000)}
    deadline = store.next_deadline()
    assert deadline is not None and deadline <= 100.0
    assert store.shorten_expiry(later.lease_id, 200.0, event(AuditKind.ROTATE)) is True
    assert store.shorten_expiry(later.lease_id, 300.0, event(AuditKind.ROTATE)) is False  # never raises
    assert store.get_lease(later.lease_id).expires_at == 200.0  # type: ignore[union-attr]


def test_live_leases_page_through_in_id_order(store: PostgresStore) -> None:
    task = a_task(agent=uid("agent"))
    store.create_task(task, event())
    mine = sorted(a_lease(task, expires_at=4e9).lease_id for _ in range(7))
    for lease_id in mine:
        store.add_lease(a_lease(task, expires_at=4e9, lease_id=lease_id), event())
    seen: list[str] = []
    cursor: str | None = None
    while True:
        page = store.live_leases(cursor, 3, now=3.9e9)
        seen.extend(lease.lease_id for lease in page.leases)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == sorted(seen)
    assert [lease_id for lease_id in seen if lease_id in mine] == mine


def test_revocation_is_compare_and_set(store: PostgresStore) -> None:
    task = a_task()
    store.create_task(task, event())
    lease = a_lease(task)
    store.add_lease(lease, event())
    started = store.begin_revocation([lease.lease_id], "task_complete", "", 10.0)
    assert [(x.lease_id, x.state, x.next_attempt_at) for x in started] == [
        (lease.lease_id, LeaseState.REVOKING, 10.0 + IN_FLIGHT_SECONDS)]
    assert store.begin_revocation([lease.lease_id], "task_complete", "", 11.0) == []
    assert lease.lease_id not in {x.lease_id for x in store.leases_to_retry(10.0, 10_000)}  # in flight
    in_flight_over = 10.0 + IN_FLIGHT_SECONDS
    assert lease.lease_id in {x.lease_id for x in store.leases_to_retry(in_flight_over, 10_000)}
    store.finish_revocation([RevocationUpdate(lease.lease_id, Step.RETRY, 12.0, 1, 20.0, "down")],
                           [event(AuditKind.REVOKE_RETRY)])
    assert lease.lease_id not in {x.lease_id for x in store.leases_to_retry(15.0, 10_000)}
    store.finish_revocation([RevocationUpdate(lease.lease_id, Step.CONFIRM, 21.0, 2)],
                           [event(AuditKind.REVOKE)])
    store.finish_revocation([RevocationUpdate(lease.lease_id, Step.GIVE_UP, 22.0, 3)], [])
    final = store.get_lease(lease.lease_id)
    assert final is not None
    assert (final.state, final.revoked_at, final.attempts) == (LeaseState.REVOKED, 21.0, 2)


def test_quarantine_is_recorded_and_lifted(store: PostgresStore) -> None:
    agent = uid("agent")
    store.set_quarantined(agent, True, event(AuditKind.QUARANTINE, agent=agent))
    store.set_quarantined(agent, True, event(AuditKind.QUARANTINE, agent=agent))
    assert store.is_quarantined(agent)
    store.set_quarantined(agent, False, event(AuditKind.RELEASE, agent=agent))
    assert not store.is_quarantined(agent)


def test_several_processes_append_one_valid_chain(open_pg: Callable[..., PostgresStore],
                                                  fresh_database: str) -> None:
    store = open_pg()
    before = len(_all_records(store))
    workers = [subprocess.Popen([sys.executable, str(WORKER), fresh_database, KEY.hex(), "append", "40",
                                 f"w{i}"]) for i in range(4)]
    store.append_audit([event(AuditKind.USE, detail=f"main-{i}") for i in range(40)])
    assert [w.wait(60) for w in workers] == [0, 0, 0, 0]
    records = _all_records(store)
    assert len(records) == before + 200
    assert [r.seq for r in records] == list(range(1, len(records) + 1))
    result = verify(KEY, records)
    assert result.ok, [p.describe() for p in result.problems]


def test_an_edited_record_is_detected(open_pg: Callable[..., PostgresStore], scratch_database: str) -> None:
    store = open_pg(scratch_database)
    store.append_audit([event(AuditKind.USE, detail=f"n{i}") for i in range(5)])
    with psycopg.connect(scratch_database, autocommit=True) as conn:
        conn.execute("UPDATE jitsec.audit SET detail = 'forged' WHERE seq = 3")
    result = verify(KEY, _all_records(store))
    assert [(p.kind, p.seq) for p in result.problems] == [(Tamper.EDITED, 3)]


def test_two_processes_revoking_the_same_leases_never_both_win(
    store: PostgresStore, fresh_database: str
) -> None:
    task = a_task()
    store.create_task(task, event())
    ids = []
    for _ in range(60):
        lease = a_lease(task)
        store.add_lease(lease, event())
        ids.append(lease.lease_id)
    runs = [subprocess.Popen([sys.executable, str(WORKER), fresh_database, KEY.hex(), "revoke", *ids],
                             stdout=subprocess.PIPE, text=True) for _ in range(2)]
    won = [set(filter(None, run.communicate(timeout=60)[0].splitlines())) for run in runs]
    assert not (won[0] & won[1])
    assert won[0] | won[1] == set(ids)
    assert {x.state for x in store.leases_of_task(task.task_id)} == {LeaseState.REVOKING}


def test_exactly_one_reaper_and_another_takes_over_when_it_is_killed(
    open_pg: Callable[..., PostgresStore], fresh_database: str
) -> None:
    holder = subprocess.Popen([sys.executable, str(WORKER), fresh_database, KEY.hex(), "reaper"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        standby, other = open_pg(), open_pg()
        assert standby.try_acquire_reaper_lock() is False
        assert other.try_acquire_reaper_lock() is False
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(10)
        deadline = time.monotonic() + 10
        while not standby.try_acquire_reaper_lock():
            assert time.monotonic() < deadline, "the reaper lock was not handed over"
            time.sleep(0.05)
        assert standby.try_acquire_reaper_lock() is True  # re-entrant for the holder
        assert other.try_acquire_reaper_lock() is False
        standby.close()
        deadline = time.monotonic() + 10
        while not other.try_acquire_reaper_lock():
            assert time.monotonic() < deadline, "closing the store did not release the lock"
            time.sleep(0.05)
    finally:
        holder.kill()
        holder.wait(10)


def test_a_lost_session_loses_the_reaper_lock_and_pooled_connections_recover(
    open_pg: Callable[..., PostgresStore], postgres_proxy, via_proxy: Callable[[str], str],
    fresh_database: str,
) -> None:
    through_proxy = open_pg(via_proxy(fresh_database))
    direct = open_pg()
    assert through_proxy.try_acquire_reaper_lock() is True
    assert through_proxy.is_quarantined("nobody") is False  # a pooled connection now exists
    postgres_proxy.stop()
    assert through_proxy.try_acquire_reaper_lock() is False
    deadline = time.monotonic() + 10
    while not direct.try_acquire_reaper_lock():  # the server noticed the cut session
        assert time.monotonic() < deadline
        time.sleep(0.05)
    postgres_proxy.start()
    assert through_proxy.is_quarantined("nobody") is False  # the dead pooled connection was replaced
    assert through_proxy.try_acquire_reaper_lock() is False


def _all_records(store: PostgresStore) -> list:
    records, after = [], 0
    while batch := store.audit_records(after, 1000):
        records.extend(batch)
        after = batch[-1].seq
    return records
