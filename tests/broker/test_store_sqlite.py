"""The SQLite store's contract: compare-and-set state moves, one-time redemption, paging, migrations."""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import replace

from jitsec.broker.audit import iter_records, verify
from jitsec.broker.lifecycle import RevocationUpdate, Step
from jitsec.broker.model import AuditEvent, AuditKind, Lease, LeaseState, Task
from jitsec.broker.store.base import IN_FLIGHT_SECONDS, Store
from jitsec.broker.store.registry import open_store
from jitsec.broker.store.sqlite import SQLiteStore

NOW = 1_700_000_000.0


def event(kind: AuditKind = AuditKind.ISSUE) -> AuditEvent:
    return AuditEvent(kind=kind, at=NOW)


def lease(i: int, expires: float = NOW + 60, task: str = "tsk_1") -> Lease:
    return Lease(
        lease_id=f"lse_{i:04d}",
        task_id=task,
        agent="a",
        engine="token",
        scopes=("r:x",),
        issued_at=NOW,
        expires_at=expires,
        fingerprint=f"{i:064x}",
    )


def fresh(tmp_path) -> SQLiteStore:
    store = open_store(f"sqlite://{tmp_path / 's.db'}", b"k" * 32)
    store.migrate()
    store.migrate()  # idempotent
    assert isinstance(store, SQLiteStore) and isinstance(store, Store)
    return store


def test_redeem_grant_succeeds_once(tmp_path) -> None:
    store = fresh(tmp_path)
    store.create_task(Task("tsk_1", "a", "t", ("r:x",), NOW, NOW + 600, "g" * 64, NOW + 300, "o"), event())
    assert store.redeem_grant("tsk_1", NOW, lease(1), event(AuditKind.REDEEM)) is True
    assert store.redeem_grant("tsk_1", NOW, lease(2), event(AuditKind.REDEEM)) is False
    assert store.get_lease("lse_0002") is None  # the losing redemption left nothing
    assert store.get_task("tsk_1").redeemed_at == NOW


def test_begin_revocation_is_compare_and_set(tmp_path) -> None:
    store = fresh(tmp_path)
    for i in range(3):
        store.add_lease(lease(i), event())
    first = store.begin_revocation(["lse_0000", "lse_0001"], "why", "", NOW)
    second = store.begin_revocation(["lse_0000", "lse_0001", "lse_0002"], "why", "", NOW)
    assert {x.lease_id for x in first} == {"lse_0000", "lse_0001"}
    assert [x.lease_id for x in second] == ["lse_0002"]
    store.finish_revocation(
        [RevocationUpdate("lse_0000", Step.CONFIRM, NOW, 1)], [event(AuditKind.REVOKE)]
    )
    store.finish_revocation(
        [RevocationUpdate("lse_0000", Step.GIVE_UP, NOW, 2)], []
    )  # not revoking: no-op
    assert store.get_lease("lse_0000").state is LeaseState.REVOKED
    assert store.get_lease("lse_0000").revoked_at == NOW


def test_due_leases_retries_and_next_deadline(tmp_path) -> None:
    store = fresh(tmp_path)
    assert store.next_deadline() is None
    store.add_lease(lease(1, NOW + 10), event())
    store.add_lease(lease(2, NOW + 20), event())
    assert store.next_deadline() == NOW + 10
    assert [x.lease_id for x in store.leases_due(NOW + 15, 10)] == ["lse_0001"]
    store.begin_revocation(["lse_0002"], "r", "", NOW + 5)
    assert store.next_deadline() == NOW + 10  # lse_0001 expires before the begun one may be retried
    assert store.leases_to_retry(NOW + 5, 10) == []  # in flight: its caller attempts it now
    in_flight_over = NOW + 5 + IN_FLIGHT_SECONDS
    assert [x.lease_id for x in store.leases_to_retry(in_flight_over, 10)] == ["lse_0002"]  # caller died


def test_live_leases_page_by_cursor(tmp_path) -> None:
    store = fresh(tmp_path)
    for i in range(25):
        store.add_lease(lease(i, NOW + (5 if i == 3 else 60)), event())
    seen, cursor = [], None
    while True:
        page = store.live_leases(cursor, 10, NOW + 10)
        seen.extend(x.lease_id for x in page.leases)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == sorted(f"lse_{i:04d}" for i in range(25) if i != 3)


def test_fingerprint_lookup_and_shorten_expiry(tmp_path) -> None:
    store = fresh(tmp_path)
    store.add_lease(lease(7), event())
    assert store.lease_by_fingerprint(f"{7:064X}").lease_id == "lse_0007"  # case-insensitive hex
    assert store.shorten_expiry("lse_0007", NOW + 1, event(AuditKind.ROTATE)) is True
    assert store.shorten_expiry("lse_0007", NOW + 100, event(AuditKind.ROTATE)) is False  # never lengthens
    assert store.get_lease("lse_0007").expires_at == NOW + 1


def test_two_connections_writing_at_once_keep_one_valid_chain(tmp_path) -> None:
    """Two store objects on one file stand for two broker processes (separate connections and locks)."""
    path = tmp_path / "shared.db"
    stores = [SQLiteStore(path, b"k" * 32), SQLiteStore(path, b"k" * 32)]
    stores[0].migrate()

    def write(store: SQLiteStore, base: int) -> None:
        for i in range(150):
            store.add_lease(lease(base + i), event())

    threads = [threading.Thread(target=write, args=(store, n * 1000)) for n, store in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result = verify(b"k" * 32, iter_records(stores[0]))
    assert result.ok and result.records == 300
    for store in stores:
        store.close()


def test_group_commit_fails_only_the_bad_writer(tmp_path) -> None:
    """Writers from many threads share transactions; a duplicate fingerprint fails its own write only."""
    store = fresh(tmp_path)
    errors: list[BaseException] = []

    def write(base: int) -> None:
        for i in range(40):
            try:
                # every writer also tries lease 0's fingerprint once: exactly one of those may win
                store.add_lease(
                    lease(base + i) if i else _with_fingerprint(lease(base), f"{0:064x}"), event()
                )
            except sqlite3.IntegrityError as error:
                errors.append(error)

    threads = [threading.Thread(target=write, args=(n * 100 + 1,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(errors) == 7  # seven duplicates refused, everything else stored
    assert len(store.live_leases(None, 1000, NOW).leases) == 8 * 39 + 1
    assert verify(b"k" * 32, iter_records(store)).ok


def _with_fingerprint(item: Lease, fingerprint: str) -> Lease:
    return replace(item, fingerprint=fingerprint)
