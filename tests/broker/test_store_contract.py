"""The store contract (``broker.store.base.Store``, ``broker.lifecycle.LeaseWrites``), run against every
store: SQLite on a temporary file, and PostgreSQL on a database of its own per test (the real server;
without it the postgres half fails under CI and is skipped, with the reason, elsewhere).

Several store objects over one file or database stand for several broker processes: each has its own
connections and locks. What only one store has (SQLite's group commit, PostgreSQL's advisory locks
across processes, migrations' bookkeeping) is tested in that store's own module.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import psycopg
import pytest
from jitsec.broker.audit import verify
from jitsec.broker.lifecycle import MOVES, TRANSITIONS, RevocationUpdate, Step
from jitsec.broker.model import AuditEvent, AuditKind, AuditRecord, Lease, LeaseState, Task
from jitsec.broker.store.base import IN_FLIGHT_SECONDS, Store
from jitsec.broker.store.registry import open_store

KEY = bytes(range(32))
NOW = 1_700_000_000.0
OUTCOMES = (Step.CONFIRM, Step.RETRY, Step.GIVE_UP)
DUPLICATE = (sqlite3.IntegrityError, psycopg.IntegrityError)
T = TypeVar("T")


@dataclass
class Backend:
    """One store's URL; ``open`` gives another store object over the same data (another "process")."""

    name: str
    url: str
    opened: list[Store] = field(default_factory=list)

    def open(self) -> Store:
        store = open_store(self.url, KEY)
        store.migrate()
        self.opened.append(store)
        return store


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        url = f"sqlite://{tmp_path / 'broker.db'}"
    else:
        url = request.getfixturevalue("as_url")(request.getfixturevalue("scratch_database"))
    backend = Backend(request.param, url)
    yield backend
    for store in backend.opened:
        store.close()


@pytest.fixture
def store(backend: Backend) -> Store:
    return backend.open()


def uid(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def a_task(agent: str = "agent", expires_at: float = NOW + 600) -> Task:
    return Task(task_id=uid("tsk"), agent=agent, name="nightly", scopes=("reports:read", "reports:write"),
                created_at=NOW, expires_at=expires_at, grant_sha256=uuid.uuid4().hex * 2,
                grant_expires_at=NOW + 300, created_by="orchestrator-1")


def a_lease(task: Task, expires_at: float = NOW + 60, **changes: object) -> Lease:
    values: dict[str, object] = dict(
        lease_id=uid("lse"), task_id=task.task_id, agent=task.agent, engine="postgres",
        scopes=("postgres:db:public.a:SELECT",), issued_at=NOW, expires_at=expires_at,
        fingerprint=uuid.uuid4().hex * 2, handle='{"role":"r","database":"db"}', username="r")
    values.update(changes)
    return Lease(**values)  # type: ignore[arg-type]


def event(kind: AuditKind = AuditKind.ISSUE, **fields: object) -> AuditEvent:
    return AuditEvent(kind=kind, at=NOW, **fields)  # type: ignore[arg-type]


def with_task(store: Store, agent: str = "agent") -> Task:
    task = a_task(agent)
    store.create_task(task, event(AuditKind.TASK_START, task_id=task.task_id))
    return task


def added(store: Store, task: Task, count: int = 1, **changes: object) -> list[Lease]:
    leases = [a_lease(task, **changes) for _ in range(count)]
    for lease in leases:
        store.add_lease(lease, event(lease_id=lease.lease_id))
    return leases


def all_records(store: Store) -> list[AuditRecord]:
    records: list[AuditRecord] = []
    while batch := store.audit_records(records[-1].seq if records else 0, 1000):
        records.extend(batch)
    return records


def at_once(calls: Sequence[Callable[[], T]]) -> list[T]:
    """Run ``calls`` in threads released together; their results in order (an error fails the test)."""
    barrier = threading.Barrier(len(calls), timeout=30)
    results: list[T | None] = [None] * len(calls)
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = calls[index]()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    return results  # type: ignore[return-value]


# opening -----------------------------------------------------------------------------------------------


def test_a_store_opens_by_url_and_migrates_again_without_harm(backend: Backend) -> None:
    store = backend.open()
    assert isinstance(store, Store)
    task = with_task(store)
    store.migrate()
    backend.open()  # another process starting up migrates too
    assert store.get_task(task.task_id) == task


# tasks -------------------------------------------------------------------------------------------------


def test_a_task_reads_back_as_written_and_an_unknown_id_is_none(store: Store) -> None:
    task = with_task(store)
    assert store.get_task(task.task_id) == task
    assert store.get_task("tsk_nobody") is None


def test_a_grant_is_redeemed_once_and_the_loser_leaves_nothing(store: Store) -> None:
    task = with_task(store)
    token, second = a_lease(task, engine="task-token"), a_lease(task, engine="task-token")
    assert store.redeem_grant(task.task_id, NOW + 5, token, event(AuditKind.REDEEM)) is True
    assert store.redeem_grant(task.task_id, NOW + 6, second, event(AuditKind.REDEEM)) is False
    assert store.get_task(task.task_id).redeemed_at == NOW + 5  # type: ignore[union-attr]
    assert store.get_lease(token.lease_id) == token and store.get_lease(second.lease_id) is None
    assert [r.event.kind for r in all_records(store)] == [AuditKind.TASK_START, AuditKind.REDEEM]


def test_concurrent_redemptions_of_one_grant_have_exactly_one_winner(backend: Backend) -> None:
    stores = [backend.open() for _ in range(4)]
    task = with_task(stores[0])
    tokens = [a_lease(task, engine="task-token") for _ in stores]
    won = at_once([lambda s=s, t=t: s.redeem_grant(task.task_id, NOW, t, event(AuditKind.REDEEM))
                   for s, t in zip(stores, tokens, strict=True)])
    assert sorted(won) == [False, False, False, True]
    assert [lease.lease_id for lease in stores[0].leases_of_task(task.task_id)] == [
        tokens[won.index(True)].lease_id]
    assert [r.event.kind for r in all_records(stores[0])].count(AuditKind.REDEEM) == 1


def test_a_failed_write_commits_nothing_of_its_transaction(store: Store) -> None:
    """A state change and its audit event commit together: here the token lease cannot be inserted (its
    fingerprint is taken), so the grant stays unredeemed and nothing is audited."""
    task = with_task(store)
    [taken] = added(store, task)
    before = len(all_records(store))
    clash = a_lease(task, engine="task-token", fingerprint=taken.fingerprint)
    with pytest.raises(DUPLICATE):
        store.redeem_grant(task.task_id, NOW, clash, event(AuditKind.REDEEM))
    assert store.get_task(task.task_id).redeemed_at is None  # type: ignore[union-attr]
    assert store.get_lease(clash.lease_id) is None and len(all_records(store)) == before
    with pytest.raises(DUPLICATE):
        store.add_lease(a_lease(task, fingerprint=taken.fingerprint), event())
    assert len(all_records(store)) == before


def test_a_task_completes_once_and_leaves_the_open_tasks(store: Store) -> None:
    task, other, expired = with_task(store), with_task(store), a_task(expires_at=NOW - 1)
    store.create_task(expired, event(AuditKind.TASK_START))
    assert {t.task_id for t in store.open_tasks_of_agent("agent", NOW)} == {task.task_id, other.task_id}
    assert store.complete_task(task.task_id, NOW + 7, event(AuditKind.TASK_COMPLETE)) is True
    assert store.complete_task(task.task_id, NOW + 8, event(AuditKind.TASK_COMPLETE)) is False
    assert store.get_task(task.task_id).completed_at == NOW + 7  # type: ignore[union-attr]
    assert [t.task_id for t in store.open_tasks_of_agent("agent", NOW)] == [other.task_id]
    assert store.open_tasks_of_agent("someone-else", NOW) == []
    kinds = [r.event.kind for r in all_records(store)]
    assert kinds.count(AuditKind.TASK_COMPLETE) == 1


# leases ------------------------------------------------------------------------------------------------


def test_a_lease_reads_back_as_written_by_id_and_by_fingerprint_in_either_case(store: Store) -> None:
    task = with_task(store)
    [lease] = added(store, task, rotated_from="lse_before")
    assert store.get_lease(lease.lease_id) == lease
    assert store.lease_by_fingerprint(lease.fingerprint) == lease
    assert store.lease_by_fingerprint(lease.fingerprint.upper()) == lease
    assert store.get_lease("lse_nobody") is None and store.lease_by_fingerprint("0" * 64) is None


def test_leases_of_a_task_and_of_an_agent_filter_by_state(store: Store) -> None:
    task, other = with_task(store, "agent"), with_task(store, "other-agent")
    mine = added(store, task, 2)
    added(store, other)
    store.begin_revocation([mine[0].lease_id], "why", "", NOW)
    assert {x.lease_id for x in store.leases_of_task(task.task_id)} == {x.lease_id for x in mine}
    assert [x.lease_id for x in store.leases_of_task(task.task_id, [LeaseState.ACTIVE])] == [mine[1].lease_id]
    assert [x.lease_id for x in store.leases_of_agent("agent", {LeaseState.REVOKING})] == [mine[0].lease_id]
    both = {LeaseState.ACTIVE, LeaseState.REVOKING}
    assert len(store.leases_of_agent("agent", both)) == 2 and len(store.leases_of_agent("agent")) == 2
    assert store.leases_of_agent("agent", [LeaseState.REVOKED]) == []


def test_live_leases_page_by_cursor_in_id_order_without_expired_or_revoking_ones(store: Store) -> None:
    task = with_task(store)
    leases = added(store, task, 25)
    expired = added(store, task, expires_at=NOW + 5)
    begun = store.begin_revocation([leases[3].lease_id], "why", "", NOW)
    assert [x.lease_id for x in begun] == [leases[3].lease_id]
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = store.live_leases(cursor, 10, NOW + 10)
        assert len(page.leases) <= 10
        seen.extend(lease.lease_id for lease in page.leases)
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == sorted(x.lease_id for i, x in enumerate(leases) if i != 3)
    assert pages == 3 and expired[0].lease_id not in seen


def test_leases_due_are_the_expired_live_ones_earliest_first_up_to_the_limit(store: Store) -> None:
    task = with_task(store)
    late, early, later, alive = (added(store, task, expires_at=NOW + s)[0] for s in (20, 10, 30, 100))
    begun = added(store, task, expires_at=NOW + 5)[0]
    store.begin_revocation([begun.lease_id], "why", "", NOW)
    due = [x.lease_id for x in store.leases_due(NOW + 50, 10)]
    assert due == [early.lease_id, late.lease_id, later.lease_id] and alive.lease_id not in due
    assert [x.lease_id for x in store.leases_due(NOW + 50, 2)] == [early.lease_id, late.lease_id]
    assert store.leases_due(NOW + 9, 10) == []


def test_next_deadline_is_the_earliest_expiry_or_retry_and_none_when_idle(store: Store) -> None:
    assert store.next_deadline() is None
    task = with_task(store)
    first, second = added(store, task, expires_at=NOW + 10)[0], added(store, task, expires_at=NOW + 20)[0]
    assert store.next_deadline() == NOW + 10
    store.begin_revocation([second.lease_id], "why", "", NOW)
    assert store.next_deadline() == NOW + 10  # first expires before the begun one may be retried
    store.begin_revocation([first.lease_id], "why", "", NOW - 25)
    assert store.next_deadline() == NOW - 25 + IN_FLIGHT_SECONDS  # a retry due before any expiry
    store.finish_revocation([RevocationUpdate(first.lease_id, Step.CONFIRM, NOW, 1)], [])
    assert store.next_deadline() == NOW + IN_FLIGHT_SECONDS
    store.finish_revocation([RevocationUpdate(second.lease_id, Step.GIVE_UP, NOW, 1, None, "x")], [])
    assert store.next_deadline() is None  # only terminal leases left


def test_shorten_expiry_only_lowers_and_only_while_the_lease_is_live(store: Store) -> None:
    task = with_task(store)
    lease, begun = added(store, task, 2, expires_at=NOW + 60)
    assert store.shorten_expiry(lease.lease_id, NOW + 10, event(AuditKind.ROTATE)) is True
    assert store.shorten_expiry(lease.lease_id, NOW + 30, event(AuditKind.ROTATE)) is False  # never raises
    assert store.get_lease(lease.lease_id).expires_at == NOW + 10  # type: ignore[union-attr]
    store.begin_revocation([begun.lease_id], "why", "", NOW)
    assert store.shorten_expiry(begun.lease_id, NOW + 10, event(AuditKind.ROTATE)) is False
    assert store.get_lease(begun.lease_id).expires_at == NOW + 60  # type: ignore[union-attr]
    assert [r.event.kind for r in all_records(store)].count(AuditKind.ROTATE) == 1


# moves: compare-and-set on the sources the lifecycle table gives each step ---------------------------------


def test_begin_revocation_is_compare_and_set_and_keeps_the_lease_in_flight(store: Store) -> None:
    task = with_task(store)
    leases = added(store, task, 3)
    ids = [lease.lease_id for lease in leases]
    first = store.begin_revocation(ids[:2], "task_complete", "by orchestrator-1", NOW)
    second = store.begin_revocation(ids, "leak", "", NOW + 1)
    assert sorted(x.lease_id for x in first) == sorted(ids[:2]) and [x.lease_id for x in second] == ids[2:]
    moved = {x.lease_id: x for x in first}[ids[0]]
    assert moved == store.get_lease(ids[0])
    assert (moved.state, moved.revoke_reason, moved.revoke_detail, moved.revoke_requested_at) == (
        LeaseState.REVOKING, "task_complete", "by orchestrator-1", NOW)
    assert moved.next_attempt_at == NOW + IN_FLIGHT_SECONDS and moved.revoked_at is None
    assert store.leases_to_retry(NOW + 5, 100) == []  # in flight: its caller attempts it now
    due = store.leases_to_retry(NOW + IN_FLIGHT_SECONDS, 100)  # its caller died: the reaper's now
    assert sorted(x.lease_id for x in due) == sorted(ids[:2])
    assert [x.lease_id for x in store.leases_to_retry(NOW + 1 + IN_FLIGHT_SECONDS, 1)] in (
        [ids[0]], [ids[1]])  # earliest first, up to the limit
    assert store.begin_revocation([], "nothing", "", NOW) == []


def test_revocations_left_in_flight_are_reclaimed_and_scheduled_retries_are_not(store: Store) -> None:
    task = with_task(store)
    in_flight, scheduled, live = added(store, task, 3)
    store.begin_revocation([in_flight.lease_id, scheduled.lease_id], "task_complete", "", NOW)
    store.finish_revocation([RevocationUpdate(scheduled.lease_id, Step.RETRY, NOW + 1, 1, NOW + 20, "down")],
                           [event(AuditKind.REVOKE_RETRY, lease_id=scheduled.lease_id)])
    assert store.leases_to_retry(NOW + 2, 100) == []  # the crash left one in flight: it would wait
    assert store.reclaim_in_flight(NOW + 2) == 1  # a restart makes it due at once
    assert [x.lease_id for x in store.leases_to_retry(NOW + 2, 100)] == [in_flight.lease_id]
    retried = store.get_lease(scheduled.lease_id)
    assert retried is not None and retried.next_attempt_at == NOW + 20  # a backoff keeps its schedule
    assert store.get_lease(live.lease_id) == live
    assert store.reclaim_in_flight(NOW + 3) == 0  # idempotent


def test_outcomes_persist_attempts_errors_and_retry_times(store: Store) -> None:
    task = with_task(store)
    [lease] = added(store, task)
    store.begin_revocation([lease.lease_id], "expired", "", NOW)
    assert store.finish_revocation(
        [RevocationUpdate(lease.lease_id, Step.RETRY, NOW + 2, 1, NOW + 20, "down")],
        [event(AuditKind.REVOKE_RETRY, lease_id=lease.lease_id)]) == {lease.lease_id}
    retrying = store.get_lease(lease.lease_id)
    assert retrying is not None
    assert (retrying.state, retrying.attempts, retrying.next_attempt_at, retrying.last_error) == (
        LeaseState.REVOKING, 1, NOW + 20, "down")
    assert store.leases_to_retry(NOW + 15, 100) == []
    assert [x.lease_id for x in store.leases_to_retry(NOW + 20, 100)] == [lease.lease_id]
    assert store.finish_revocation([RevocationUpdate(lease.lease_id, Step.CONFIRM, NOW + 21, 2)],
                                   [event(AuditKind.REVOKE, lease_id=lease.lease_id)]) == {lease.lease_id}
    assert store.finish_revocation([RevocationUpdate(lease.lease_id, Step.GIVE_UP, NOW + 22, 3, None, "x")],
                                   [event(AuditKind.REVOKE_FAILED, lease_id=lease.lease_id)]) == set()
    final = store.get_lease(lease.lease_id)
    assert final is not None
    assert (final.state, final.revoked_at, final.attempts, final.last_error, final.next_attempt_at) == (
        LeaseState.REVOKED, NOW + 21, 2, None, None)
    assert final.revoke_reason == "expired"
    kinds = [r.event.kind for r in all_records(store)]
    assert kinds[-2:] == [AuditKind.REVOKE_RETRY, AuditKind.REVOKE]


def _one_lease_per_state(store: Store, task: Task) -> dict[LeaseState, Lease]:
    return {state: added(store, task, state=state, next_attempt_at=NOW)[0] for state in LeaseState}


def test_begin_moves_exactly_the_leases_whose_state_the_table_lets_begin(store: Store) -> None:
    leases = _one_lease_per_state(store, with_task(store))
    moved = store.begin_revocation([lease.lease_id for lease in leases.values()], "why", "", NOW)
    assert {x.lease_id for x in moved} == {
        leases[state].lease_id for state in LeaseState if (state, Step.BEGIN) in TRANSITIONS}
    for state, lease in leases.items():
        expected = MOVES[Step.BEGIN].target if (state, Step.BEGIN) in TRANSITIONS else state
        assert store.get_lease(lease.lease_id).state is expected  # type: ignore[union-attr]


@pytest.mark.parametrize("step", OUTCOMES, ids=lambda step: step.value)
def test_an_outcome_applies_from_exactly_the_states_the_table_allows(store: Store, step: Step) -> None:
    leases = _one_lease_per_state(store, with_task(store))
    done = store.finish_revocation(
        [RevocationUpdate(lease.lease_id, step, NOW + 1, 1, NOW + 9, "e") for lease in leases.values()], [])
    assert done == {leases[state].lease_id for state in LeaseState if (state, step) in TRANSITIONS}
    for state, lease in leases.items():
        after = store.get_lease(lease.lease_id)
        assert after is not None
        if (state, step) in TRANSITIONS:
            assert (after.state, after.attempts) == (TRANSITIONS[(state, step)], 1)
        else:
            assert after == lease, f"{step.value} changed a lease in state {state.value}"


def test_an_attempt_applies_once_and_only_its_own_events_are_audited(store: Store) -> None:
    task = with_task(store)
    [lease] = added(store, task)
    store.begin_revocation([lease.lease_id], "task_complete", "", NOW)
    confirm = RevocationUpdate(lease.lease_id, Step.CONFIRM, NOW + 1, 1)
    assert store.finish_revocation([confirm], [event(AuditKind.REVOKE, lease_id=lease.lease_id)]) == {
        lease.lease_id}
    # a second caller that read the lease in flight (attempts 0) and attempted it too: nothing changes
    assert store.finish_revocation([confirm], [event(AuditKind.REVOKE, lease_id=lease.lease_id)]) == set()
    assert [r.event.kind for r in all_records(store)].count(AuditKind.REVOKE) == 1


def test_two_retries_computed_from_one_read_apply_once(store: Store) -> None:
    task = with_task(store)
    [lease] = added(store, task)
    store.begin_revocation([lease.lease_id], "expired", "", NOW)
    retry = RevocationUpdate(lease.lease_id, Step.RETRY, NOW + 1, 1, NOW + 20, "down")
    assert store.finish_revocation([retry], [event(AuditKind.REVOKE_RETRY, lease_id=lease.lease_id)])
    assert not store.finish_revocation([retry], [event(AuditKind.REVOKE_RETRY, lease_id=lease.lease_id)])
    after = store.get_lease(lease.lease_id)
    assert after is not None and after.attempts == 1
    assert [r.event.kind for r in all_records(store)].count(AuditKind.REVOKE_RETRY) == 1


def test_two_processes_revoking_the_same_leases_never_both_win(backend: Backend) -> None:
    first, second = backend.open(), backend.open()
    task = with_task(first)
    ids = [lease.lease_id for lease in added(first, task, 60)]
    won = at_once([lambda s=s: {x.lease_id for x in s.begin_revocation(ids, "why", "", NOW)}
                   for s in (first, second)])
    assert not (won[0] & won[1])
    assert won[0] | won[1] == set(ids)
    assert {x.state for x in second.leases_of_task(task.task_id)} == {LeaseState.REVOKING}


# audit -------------------------------------------------------------------------------------------------


def test_the_audit_head_is_the_last_record(store: Store) -> None:
    assert store.audit_head() is None
    store.append_audit([event(AuditKind.LEAK), event(AuditKind.LEAK)])
    last = all_records(store)[-1]
    assert store.audit_head() == (last.seq, last.hash)


def test_the_audit_chain_reads_back_in_order_by_pages_and_verifies(store: Store) -> None:
    task = with_task(store)
    [lease] = added(store, task)
    use = AuditEvent(kind=AuditKind.USE, at=NOW + 1.5, principal="resource-1", agent="agent",
                     task_id=task.task_id, lease_id=lease.lease_id, engine="postgres",
                     scopes=("a:b", "c:d"), resource="reports-api", detail="active=true")
    store.append_audit([use, event(AuditKind.USE, detail="second")])
    store.append_audit([])
    records = all_records(store)
    assert [r.seq for r in records] == [1, 2, 3, 4]
    assert [r.event.kind for r in records] == [AuditKind.TASK_START, AuditKind.ISSUE, AuditKind.USE,
                                               AuditKind.USE]
    assert records[2].event == use
    assert [r.prev_hash for r in records[1:]] == [r.hash for r in records[:-1]]
    assert store.audit_records(after_seq=2, limit=1) == [records[2]]
    assert store.audit_records(after_seq=4) == []
    result = verify(KEY, records)
    assert result.ok and result.records == 4


def test_two_processes_writing_at_once_keep_one_valid_chain(backend: Backend) -> None:
    stores = [backend.open(), backend.open()]
    task = with_task(stores[0])

    def write(store: Store) -> None:
        added(store, task, 100)

    at_once([lambda s=s: write(s) for s in stores])
    records = all_records(stores[1])
    assert [r.seq for r in records] == list(range(1, 202))
    result = verify(KEY, records)
    assert result.ok and result.records == 201, [p.describe() for p in result.problems]


# agents and coordination -----------------------------------------------------------------------------


def test_quarantine_is_recorded_idempotently_audited_and_lifted(store: Store) -> None:
    assert store.is_quarantined("agent") is False
    store.set_quarantined("agent", True, event(AuditKind.QUARANTINE, agent="agent"))
    store.set_quarantined("agent", True, event(AuditKind.QUARANTINE, agent="agent"))
    assert store.is_quarantined("agent") is True and store.is_quarantined("other") is False
    store.set_quarantined("agent", False, event(AuditKind.RELEASE, agent="agent"))
    assert store.is_quarantined("agent") is False
    assert [r.event.kind for r in all_records(store)] == [AuditKind.QUARANTINE] * 2 + [AuditKind.RELEASE]


def test_one_reaper_at_a_time_re_entrant_and_handed_over_by_close(backend: Backend) -> None:
    holder, standby = backend.open(), backend.open()
    assert holder.try_acquire_reaper_lock() is True
    assert standby.try_acquire_reaper_lock() is False
    assert holder.try_acquire_reaper_lock() is True  # re-entrant for the holder
    holder.close()
    deadline = time.monotonic() + 10
    while not standby.try_acquire_reaper_lock():
        assert time.monotonic() < deadline, "closing the store did not release the reaper lock"
        time.sleep(0.05)
    assert standby.try_acquire_reaper_lock() is True
