"""What only the PostgreSQL store has: its migrations' bookkeeping, and what several broker processes
need of it across real processes — one audit chain with many writers (an advisory lock), and one reaper
at a time with failover (a session advisory lock). The contract every store keeps, compare-and-set
revocation included, is ``tests/broker/test_store_contract.py``'s."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from jitsec.broker.audit import Tamper, verify
from jitsec.broker.model import AuditEvent, AuditKind
from jitsec.broker.store.base import Store
from jitsec.broker.store.postgres import PostgresStore, open_postgres
from jitsec.broker.store.postgres_migrations import MIGRATIONS
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
        assert conn.execute("SELECT max(version) FROM jitsec.schema_version").fetchone() == (len(MIGRATIONS),)
    first.close()


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
