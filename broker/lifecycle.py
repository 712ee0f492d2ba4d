"""A lease's life as a persisted state machine: the one table of moves, and the one object that makes them.

    issue ──▶ active ──begin──▶ revoking ──confirm──▶ revoked      (terminal)
                                  │  ▲
                            retry ╰──╯  (transient engine error: backoff with full jitter)
                                  │
                                  ╰──give up / permanent error──▶ failed   (terminal; always alerts)

``TRANSITIONS`` is the only statement of these rules. Only ``issue`` creates a lease; only ``begin``
leaves ``active``, whatever the reason (expiry by the reaper, a leak, task completion, rotation,
quarantine, an explicit revocation); nothing leaves a terminal state.

``LeaseMachine`` is the only writer of a lease's state: it checks each move against the table before
anything is written, then has the store apply it as a compare-and-set on the move's source states
(``MOVES[step].sources``, from which the SQL stores build their ``WHERE state ...`` too), in one
transaction with its audit events. So of two processes making one move on one lease, exactly one wins.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import Enum
from typing import Protocol

from jitsec.broker.model import AuditEvent, Lease, LeaseState


class Step(Enum):
    ISSUE = "issue"
    BEGIN = "begin"
    CONFIRM = "confirm"
    RETRY = "retry"
    GIVE_UP = "give_up"


TRANSITIONS: Mapping[tuple[LeaseState | None, Step], LeaseState] = {
    (None, Step.ISSUE): LeaseState.ACTIVE,  # None: no lease yet
    (LeaseState.ACTIVE, Step.BEGIN): LeaseState.REVOKING,
    (LeaseState.REVOKING, Step.CONFIRM): LeaseState.REVOKED,
    (LeaseState.REVOKING, Step.RETRY): LeaseState.REVOKING,
    (LeaseState.REVOKING, Step.GIVE_UP): LeaseState.FAILED,
}

TERMINAL = frozenset(state for state in LeaseState if all(source is not state for source, _ in TRANSITIONS))
"""The states no move leaves (revoked, failed)."""


class IllegalTransition(ValueError):
    pass


def advance(state: LeaseState | None, step: Step) -> LeaseState:
    """The state ``step`` leads to from ``state`` (None: no lease yet), or ``IllegalTransition``."""
    try:
        return TRANSITIONS[(state, step)]
    except KeyError:
        where = "a lease not yet issued" if state is None else f"a lease in state {state.value!r}"
        raise IllegalTransition(f"{where} cannot {step.value}") from None


@dataclass(frozen=True, slots=True)
class Move:
    """One step as the table has it: the states it may start from, and the one state it leads to
    (one target per step is what lets a store apply a step as a single compare-and-set)."""

    step: Step
    sources: frozenset[LeaseState | None]
    target: LeaseState


def _moves() -> dict[Step, Move]:
    moves = {}
    for step in Step:
        rows = {source: target for (source, each), target in TRANSITIONS.items() if each is step}
        targets = set(rows.values())
        if len(targets) != 1:
            raise AssertionError(f"step {step.value} must lead to exactly one state, not {targets}")
        moves[step] = Move(step, frozenset(rows), targets.pop())
    return moves


MOVES: Mapping[Step, Move] = _moves()

REVOCABLE = frozenset(s for s in MOVES[Step.BEGIN].sources if s is not None)
"""Where a revocation may begin: a lease in one of these states, unexpired, is live."""
PENDING = frozenset(s for s in MOVES[Step.RETRY].sources if s is not None)
"""Where a revocation has begun and not settled: the reaper's retry pass attempts these."""


@dataclass(frozen=True, slots=True)
class RevocationUpdate:
    """The outcome of one engine attempt on a lease being revoked: ``CONFIRM``, ``RETRY`` (again at
    ``next_attempt_at``) or ``GIVE_UP`` (with ``last_error``). ``state`` is where the table says it leads."""

    lease_id: str
    step: Step
    at: float
    attempts: int
    next_attempt_at: float | None = None
    last_error: str | None = None

    @property
    def state(self) -> LeaseState:
        return MOVES[self.step].target

    @property
    def revoked_at(self) -> float | None:
        """``at`` once revoked; None otherwise."""
        return self.at if self.state is LeaseState.REVOKED else None


def applied(lease: Lease, update: RevocationUpdate) -> Lease:
    """``lease`` as ``update`` leaves it; ``IllegalTransition`` if the table has no such move from
    the lease's state."""
    if update.lease_id != lease.lease_id:
        raise ValueError(f"update for {update.lease_id} applied to lease {lease.lease_id}")
    return replace(
        lease,
        state=advance(lease.state, update.step),
        attempts=update.attempts,
        next_attempt_at=update.next_attempt_at,
        last_error=update.last_error,
        revoked_at=update.revoked_at,
    )


class LeaseWrites(Protocol):
    """The store's four writes of lease state (part of ``broker.store.base.Store``). Only
    ``LeaseMachine`` calls them; each commits its lease change and audit event(s) in one transaction."""

    def add_lease(self, lease: Lease, event: AuditEvent) -> None:
        """Insert the lease as given (the machine has checked it is in ``MOVES[ISSUE].target``)."""
        ...

    def redeem_grant(self, task_id: str, now: float, token_lease: Lease, event: AuditEvent) -> bool:
        """If the task's grant was never redeemed: mark it redeemed at ``now``, add the task-token lease
        and the event, return True. Otherwise change nothing and return False (the caller audits replay)."""
        ...

    def begin_revocation(self, lease_ids: Sequence[str], reason: str, detail: str, now: float) -> list[Lease]:
        """Compare-and-set: move those of ``lease_ids`` whose state is in ``MOVES[BEGIN].sources`` to its
        target (reason, detail, requested_at, next_attempt_at = now + IN_FLIGHT_SECONDS) and return them
        as updated; the others are skipped (someone else got there first). The caller attempts them at
        once; the later ``next_attempt_at`` keeps the reaper's retry pass off an attempt in flight, and
        picks the lease up if its caller died."""
        ...

    def finish_revocation(
        self, updates: Sequence[RevocationUpdate], events: Sequence[AuditEvent]
    ) -> set[str]:
        """Compare-and-set per update: apply it to its lease only while the lease's state is in
        ``MOVES[update.step].sources`` and its attempt count is ``update.attempts - 1`` (the count the
        attempt read); append ``applied_events(events, applied)``; all in one transaction. Returns the
        ids of the leases updated: an attempt another caller finished first changes nothing and is not
        audited twice."""
        ...


def applied_events(events: Sequence[AuditEvent], applied: set[str]) -> list[AuditEvent]:
    """The events of ``finish_revocation`` to keep: those of a lease whose update applied."""
    return [event for event in events if event.lease_id in applied]


class LeaseMachine:
    """The one way a lease changes state; see the module's docstring. Stateless: it holds the store only,
    and reads it at each call (so a test that replaces a store method is heard)."""

    def __init__(self, store: LeaseWrites) -> None:
        self._store = store

    def issue(self, lease: Lease, event: AuditEvent) -> None:
        """Record a newly issued lease: (none) ──issue──▶ active."""
        self._store.add_lease(_issued(lease), event)

    def redeem(self, task_id: str, now: float, token_lease: Lease, event: AuditEvent) -> bool:
        """Redeem the task's grant once, issuing its task-token lease; False (nothing written) if it was
        redeemed already."""
        return self._store.redeem_grant(task_id, now, _issued(token_lease), event)

    def begin(self, lease_ids: Sequence[str], reason: str, detail: str, now: float) -> list[Lease]:
        """active ──begin──▶ revoking for those of ``lease_ids`` still active; returns them as moved."""
        if not lease_ids:
            return []
        return self._store.begin_revocation(lease_ids, reason, detail, now)

    def finish(
        self, outcomes: Sequence[tuple[Lease, RevocationUpdate]], events: Sequence[AuditEvent]
    ) -> dict[str, Lease]:
        """Persist one attempt's outcome per lease (each lease as the caller last read it) with the events;
        returns, by lease id, the leases as the outcomes leave them, for those whose outcome applied
        (another caller may have finished a lease first). Every move is checked before anything is written."""
        after = {update.lease_id: applied(lease, update) for lease, update in outcomes}
        done = self._store.finish_revocation([update for _, update in outcomes], events)
        return {lease_id: lease for lease_id, lease in after.items() if lease_id in done}


def _issued(lease: Lease) -> Lease:
    target = advance(None, Step.ISSUE)
    if lease.state is not target:
        raise IllegalTransition(f"a lease is issued {target.value}, not {lease.state.value}")
    return lease
