"""The lease state machine: the table's properties (property test), and ``LeaseMachine`` refusing a move
the table does not have before anything is written. The stores' side of each move (compare-and-set on
the step's sources) is in the store contract suite, ``test_store_contract.py``."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jitsec.broker.lifecycle import (
    MOVES,
    PENDING,
    REVOCABLE,
    TERMINAL,
    TRANSITIONS,
    IllegalTransition,
    LeaseMachine,
    RevocationUpdate,
    Step,
    advance,
    applied,
)
from jitsec.broker.model import AuditEvent, AuditKind, Lease, LeaseState
from jitsec.broker.store.sqlite import SQLiteStore

NOW = 1_700_000_000.0


@given(st.lists(st.sampled_from(list(Step)), max_size=30))
def test_no_sequence_of_steps_leaves_a_terminal_state_or_returns_to_active(steps: list[Step]) -> None:
    state = LeaseState.ACTIVE
    seen_terminal = False
    for step in steps:
        try:
            new = advance(state, step)
        except IllegalTransition:
            continue
        assert new is not LeaseState.ACTIVE
        if state in TERMINAL:
            raise AssertionError("left a terminal state")
        seen_terminal = seen_terminal or new in TERMINAL
        state = new
    assert not (seen_terminal and state not in TERMINAL)


def test_the_derived_views_say_what_the_table_says() -> None:
    names = [sorted(state.value for state in states) for states in (TERMINAL, REVOCABLE, PENDING)]
    assert names == [["failed", "revoked"], ["active"], ["revoking"]]
    assert advance(None, Step.ISSUE) is LeaseState.ACTIVE  # only issue creates a lease
    for step, move in MOVES.items():
        assert {(source, step) for source in move.sources} == {key for key in TRANSITIONS if key[1] is step}
        assert all(TRANSITIONS[(source, step)] is move.target for source in move.sources)
    with pytest.raises(IllegalTransition, match="a lease in state 'revoked' cannot begin"):
        advance(LeaseState.REVOKED, Step.BEGIN)


def a_lease(state: LeaseState = LeaseState.ACTIVE) -> Lease:
    return Lease(lease_id="lse_1", task_id="tsk_1", agent="a", engine="token", scopes=("r:x",),
                 issued_at=NOW, expires_at=NOW + 60, fingerprint="f" * 64, state=state)


@pytest.mark.parametrize("step", [Step.CONFIRM, Step.RETRY, Step.GIVE_UP])
def test_an_outcome_applies_to_a_lease_being_revoked_only(step: Step) -> None:
    update = RevocationUpdate("lse_1", step, NOW + 1, 1, NOW + 5 if step is Step.RETRY else None, "e")
    moved = applied(a_lease(LeaseState.REVOKING), update)
    assert moved.state is MOVES[step].target is update.state
    assert moved.revoked_at == (NOW + 1 if step is Step.CONFIRM else None)
    for state in set(LeaseState) - {LeaseState.REVOKING}:
        with pytest.raises(IllegalTransition):
            applied(a_lease(state), update)
    with pytest.raises(ValueError, match="applied to lease"):
        applied(replace(a_lease(LeaseState.REVOKING), lease_id="lse_2"), update)


@pytest.fixture
def store(tmp_path: Path):
    store = SQLiteStore(tmp_path / "s.db", b"k" * 32)
    store.migrate()
    yield store
    store.close()


def test_the_machine_refuses_an_illegal_move_before_writing_anything(store: SQLiteStore) -> None:
    machine = LeaseMachine(store)
    event = AuditEvent(kind=AuditKind.ISSUE, at=NOW)
    with pytest.raises(IllegalTransition, match="issued active, not revoked"):
        machine.issue(a_lease(LeaseState.REVOKED), event)
    assert store.get_lease("lse_1") is None and store.audit_records() == []
    machine.issue(a_lease(), event)
    confirm = RevocationUpdate("lse_1", Step.CONFIRM, NOW, 1)
    with pytest.raises(IllegalTransition, match="'active' cannot confirm"):  # begin first
        machine.finish([(a_lease(), confirm)], [AuditEvent(kind=AuditKind.REVOKE, at=NOW)])
    assert store.get_lease("lse_1").state is LeaseState.ACTIVE and len(store.audit_records()) == 1
    [begun] = machine.begin(["lse_1", "lse_1"], "why", "", NOW)
    assert machine.begin(["lse_1"], "again", "", NOW) == [] and machine.begin([], "none", "", NOW) == []
    revoke = AuditEvent(kind=AuditKind.REVOKE, at=NOW, lease_id="lse_1")
    done = machine.finish([(begun, confirm)], [revoke])
    assert done == {"lse_1": store.get_lease("lse_1")} and done["lse_1"].state is LeaseState.REVOKED
    assert machine.finish([(begun, confirm)], [revoke]) == {}  # applied once: a second caller changes nothing
