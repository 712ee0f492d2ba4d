"""Revocation: the retry schedule (property test) and the revoker with failing engines (the moves
themselves are ``test_lifecycle.py``'s)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jitsec.broker.engines.base import EngineLimits, IssuedCredential, IssueRequest, RevokeOutcome
from jitsec.broker.errors import EngineError, TransientEngineError
from jitsec.broker.model import AuditKind, LeaseState
from jitsec.broker.revocation import RetryPolicy, RevocationStatus

from jitsec.kernel.credential_format import CredentialKind, mint


@given(st.integers(min_value=1, max_value=60), st.floats(min_value=0, max_value=1, exclude_max=True))
def test_backoff_grows_with_jitter_and_stays_under_the_cap(attempts: int, r: float) -> None:
    policy = RetryPolicy(base_seconds=0.5, cap_seconds=60, max_attempts=12)
    delay = policy.delay(attempts, lambda: r)
    ceiling = min(60, 0.5 * 2 ** (attempts - 1))
    assert ceiling / 2 <= delay <= ceiling


class FlakyEngine:
    """An in-process engine whose revoke fails as scripted (pure revocation logic, no real target)."""

    def __init__(self, failures: Sequence[Exception]) -> None:
        self.name, self.limits = "token", EngineLimits()
        self.failures = list(failures)
        self.revoked: list[str] = []
        self.lock = threading.Lock()

    def validate_scopes(self, scopes: Sequence[str]) -> None:
        return None

    def issue(self, request: IssueRequest) -> IssuedCredential:
        return IssuedCredential(secret=mint(CredentialKind.ENGINE_TOKEN), handle=f"h-{request.lease_id}")

    def revoke(self, handle: str) -> RevokeOutcome:
        with self.lock:
            if self.failures:
                raise self.failures.pop(0)
            self.revoked.append(handle)
        return RevokeOutcome.REVOKED

    def close(self) -> None:
        return None


def _issue_one(running):
    started = running.client("orchestrator").start_task("demo-agent", "t", ["reports:read"])
    task = running.client().task(started.task_id, started.grant, handle_sigterm=False).__enter__()
    return task, task.secret("token", ["reports:read"])


def test_transient_failures_retry_until_revoked(serve, clock) -> None:
    engine = FlakyEngine([TransientEngineError("connection reset")] * 2)
    running = serve(clock=clock, engines={"token": engine}, run_reaper=False)
    _, secret = _issue_one(running)
    result = running.broker.service.revoke_lease(secret.lease_id, "requested")
    assert result.status is RevocationStatus.RETRYING and result.lease.state is LeaseState.REVOKING
    assert running.client("resource").introspect(secret.value)["active"] is False  # dead to resources already
    for _ in range(2):
        clock.advance(120)
        running.broker.reaper.run_once()
    lease = running.broker.store.get_lease(secret.lease_id)
    assert lease.state is LeaseState.REVOKED and lease.attempts == 3
    assert engine.revoked == [f"h-{secret.lease_id}"]
    kinds = [r.event.kind for r in running.broker.store.audit_records(limit=1000)]
    assert kinds.count(AuditKind.REVOKE_RETRY) == 2 and AuditKind.REVOKE in kinds


def test_permanent_failure_is_terminal_and_alerts(serve, clock) -> None:
    alerts: list[tuple[str, str]] = []
    engine = FlakyEngine([EngineError("role is owned by another user")])
    running = serve(
        clock=clock,
        engines={"token": engine},
        run_reaper=False,
        alert=lambda lease, message: alerts.append((lease.lease_id, message)),
    )
    _, secret = _issue_one(running)
    result = running.broker.service.revoke_lease(secret.lease_id, "leak", "seen in app.log")
    assert result.status is RevocationStatus.FAILED
    assert alerts == [(secret.lease_id, "EngineError: role is owned by another user")]
    assert running.broker.store.get_lease(secret.lease_id).state is LeaseState.FAILED
    assert running.broker.service.revoke_lease(secret.lease_id, "again").status is RevocationStatus.FAILED


def test_retries_give_up_into_failed_with_an_alert(serve, env, clock) -> None:
    alerts: list[str] = []
    engine = FlakyEngine([TransientEngineError("down")] * 10)
    config = env.config(reaper={"retry_max_attempts": 3})
    running = serve(
        config=config,
        clock=clock,
        engines={"token": engine},
        run_reaper=False,
        alert=lambda lease, message: alerts.append(message),
    )
    _, secret = _issue_one(running)
    running.broker.service.revoke_lease(secret.lease_id, "requested")
    for _ in range(5):
        clock.advance(600)
        running.broker.reaper.run_once()
    lease = running.broker.store.get_lease(secret.lease_id)
    assert lease.state is LeaseState.FAILED and lease.attempts == 3
    assert len(alerts) == 1 and "gave up after 3 attempts" in alerts[0]


def test_by_default_retries_never_give_up_and_alert_while_waiting(serve, clock) -> None:
    alerts: list[str] = []
    engine = FlakyEngine([TransientEngineError("database unreachable")] * 25)
    running = serve(
        clock=clock,
        engines={"token": engine},
        run_reaper=False,
        alert=lambda lease, message: alerts.append(message),
    )
    _, secret = _issue_one(running)
    running.broker.service.revoke_lease(secret.lease_id, "requested")
    for _ in range(24):
        clock.advance(600)
        running.broker.reaper.run_once()
    lease = running.broker.store.get_lease(secret.lease_id)
    assert lease.state is LeaseState.REVOKING and lease.attempts == 25
    assert [message.split(":")[0] for message in alerts] == [
        "still revoking after 3 attempts",
        "still revoking after 13 attempts",
        "still revoking after 23 attempts",
    ]
    clock.advance(600)
    running.broker.reaper.run_once()
    assert running.broker.store.get_lease(secret.lease_id).state is LeaseState.REVOKED


def test_concurrent_revocations_of_one_lease_revoke_once(serve) -> None:
    engine = FlakyEngine([])
    running = serve(engines={"token": engine}, run_reaper=False)
    _, secret = _issue_one(running)
    results: list[RevocationStatus] = []
    threads = [
        threading.Thread(
            target=lambda: results.append(
                running.broker.service.revoke_lease(secret.lease_id, "requested").status
            )
        )
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(RevocationStatus.REVOKED) == 1
    # the others saw it already revoked, or still in flight in another thread ("retrying": not done yet)
    assert set(results) <= {
        RevocationStatus.REVOKED,
        RevocationStatus.ALREADY_REVOKED,
        RevocationStatus.RETRYING,
    }
    assert engine.revoked == [f"h-{secret.lease_id}"]


@pytest.mark.parametrize("failure", [TransientEngineError("x"), EngineError("y")])
def test_a_failed_store_write_after_issue_undoes_the_engine_side(serve, failure) -> None:
    engine = FlakyEngine([])
    running = serve(engines={"token": engine}, run_reaper=False)
    started = running.client("orchestrator").start_task("demo-agent", "t", ["reports:read"])
    task = running.client().task(started.task_id, started.grant, handle_sigterm=False).__enter__()
    store = running.broker.store
    original = store.add_lease

    def broken(lease, event):
        raise RuntimeError("disk full")

    store.add_lease = broken
    try:
        with pytest.raises(Exception):  # noqa: B017 - the client sees a 500
            task.secret("token", ["reports:read"])
    finally:
        store.add_lease = original
    assert len(engine.revoked) == 1  # the credential the engine made was revoked again
