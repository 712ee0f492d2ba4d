"""The reaper: revokes at expiry without the agent, catches up after a restart, one at a time."""

from __future__ import annotations

import time

from jitsec.broker.model import AuditKind, LeaseState
from jitsec.broker.runtime import build_broker
from jitsec.broker.store.sqlite import SQLiteStore


def _task_with_secrets(running, count: int, ttl: int):
    started = running.client("orchestrator").start_task("demo-agent", "t", ["reports:read"])
    task = running.client().task(started.task_id, started.grant, handle_sigterm=False).__enter__()
    return task, [task.secret("token", ["reports:read"], ttl_seconds=ttl) for _ in range(count)]


def test_leases_are_revoked_at_expiry_even_if_the_agent_vanished(serve) -> None:
    running = serve()
    _, secrets = _task_with_secrets(running, 3, ttl=1)  # the agent never completes its task
    deadline = time.monotonic() + 30  # generous: a loaded CI machine
    store = running.broker.store
    while time.monotonic() < deadline:
        if all(store.get_lease(s.lease_id).state is LeaseState.REVOKED for s in secrets):
            break
        time.sleep(0.05)
    for secret in secrets:
        lease = store.get_lease(secret.lease_id)
        assert lease.state is LeaseState.REVOKED and lease.revoke_reason == "expired"
        assert lease.revoked_at >= lease.expires_at  # lateness itself: benchmarks/broker_reaper.py
    kinds = [r.event.kind for r in store.audit_records(limit=1000)]
    assert kinds.count(AuditKind.EXPIRE) == 3


def test_catches_up_at_once_after_a_restart(serve, env, clock) -> None:
    config = env.config()
    running = serve(config=config, clock=clock, run_reaper=False)
    _, secrets = _task_with_secrets(running, 50, ttl=60)
    running.broker.close()  # the broker is down while the leases expire
    clock.advance(3600)
    restarted = build_broker(config, clock=clock)
    try:
        assert restarted.reaper.run_once() == 51  # 50 secrets and the task token, in one pass
        for secret in secrets:
            assert restarted.store.get_lease(secret.lease_id).state is LeaseState.REVOKED
        assert restarted.store.next_deadline() is None
    finally:
        restarted.close()


def test_only_one_process_holds_the_reaper_lock(env) -> None:
    path = env.tmp / "shared.db"
    first, second = SQLiteStore(path, b"k" * 32), SQLiteStore(path, b"k" * 32)
    try:
        assert first.try_acquire_reaper_lock() is True
        assert first.try_acquire_reaper_lock() is True  # re-entrant for the holder
        assert second.try_acquire_reaper_lock() is False
        first.close()
        assert second.try_acquire_reaper_lock() is True  # the stand-by takes over
    finally:
        second.close()


def test_reaper_sleeps_until_the_next_deadline(serve, clock) -> None:
    running = serve(clock=clock, run_reaper=False)
    reaper = running.broker.reaper
    assert reaper.seconds_until_next() == running.broker.config.reaper.max_sleep_seconds
    _task_with_secrets(running, 1, ttl=60)
    clock.advance(59.99)
    coalesce = running.broker.config.reaper.coalesce_seconds
    assert coalesce <= reaper.seconds_until_next() <= 0.011 + coalesce


def test_leases_expiring_one_after_another_are_revoked_in_one_pass(serve, clock) -> None:
    running = serve(clock=clock, run_reaper=False)
    reaper = running.broker.reaper
    started = running.client("orchestrator").start_task("demo-agent", "t", ["reports:read"])
    task = running.client().task(started.task_id, started.grant, handle_sigterm=False).__enter__()
    for _ in range(20):  # one lease every 2 ms: continuous expiry, 40 ms from first to last
        task.secret("token", ["reports:read"], ttl_seconds=60)
        clock.advance(0.002)
    clock.advance(60 - 0.04)  # the first lease is due now
    clock.advance(reaper.seconds_until_next())  # the reaper's sleep
    assert reaper.run_once() == 20  # all twenty in this pass, not one pass each
    assert running.broker.config.reaper.coalesce_seconds < 1  # lateness stays within the promise
