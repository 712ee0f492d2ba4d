"""What only the SQLite store has: group commit (writers from many threads share one transaction, each in
its own savepoint). The contract every store keeps is ``test_store_contract.py``'s."""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import replace

from jitsec.broker.audit import iter_records, verify
from jitsec.broker.model import AuditEvent, AuditKind, Lease
from jitsec.broker.store.base import Store
from jitsec.broker.store.registry import open_store
from jitsec.broker.store.sqlite import SQLiteStore

NOW = 1_700_000_000.0


def event(kind: AuditKind = AuditKind.ISSUE) -> AuditEvent:
    return AuditEvent(kind=kind, at=NOW)


def lease(i: int) -> Lease:
    return Lease(
        lease_id=f"lse_{i:04d}",
        task_id="tsk_1",
        agent="a",
        engine="token",
        scopes=("r:x",),
        issued_at=NOW,
        expires_at=NOW + 60,
        fingerprint=f"{i:064x}",
    )


def fresh(tmp_path) -> SQLiteStore:
    store = open_store(f"sqlite://{tmp_path / 's.db'}", b"k" * 32)
    store.migrate()
    store.migrate()  # idempotent
    assert isinstance(store, SQLiteStore) and isinstance(store, Store)
    return store


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
