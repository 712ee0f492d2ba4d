"""A crash during revocation must not leave a completed task's credentials working: a restart makes
in-flight revocations due at once, completing again finishes what is unfinished, and the SDK can
retry a completion whose request never arrived."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import pytest
from jitsec.broker.client import BrokerClient
from jitsec.broker.lifecycle import LeaseMachine
from jitsec.broker.model import LeaseState

from jitsec.testing import wait_until

from .test_revocation import FlakyEngine, _issue_one


def _crash_in_flight(running, lease_id: str) -> None:
    """What a broker killed between beginning a revocation and attempting it leaves behind."""
    LeaseMachine(running.broker.store).begin([lease_id], "task_complete", "", running.broker.service.clock())


def test_completing_again_finishes_revocations_a_crash_left_in_flight(serve, clock) -> None:
    engine = FlakyEngine([])
    running = serve(clock=clock, engines={"token": engine}, run_reaper=False)
    task, secret = _issue_one(running)
    _crash_in_flight(running, secret.lease_id)
    service = running.broker.service
    first = service.complete_task(task.task_id, "orchestrator-1")
    assert first.newly_completed
    second = service.complete_task(task.task_id, "orchestrator-1")  # the retry after the crash
    assert not second.newly_completed
    assert running.broker.store.get_lease(secret.lease_id).state is LeaseState.REVOKED
    assert engine.revoked.count(f"h-{secret.lease_id}") >= 1
    assert running.client("resource").introspect(secret.value)["active"] is False


def test_a_restarted_broker_revokes_what_was_in_flight_without_waiting(serve, env) -> None:
    engine = FlakyEngine([])
    config = env.config()
    first = serve(config=config, engines={"token": engine}, run_reaper=False)
    _, secret = _issue_one(first)
    _crash_in_flight(first, secret.lease_id)
    restarted = serve(config=config, engines={"token": engine})  # same store; its reaper starts
    assert wait_until(lambda: restarted.broker.store.get_lease(secret.lease_id).state is LeaseState.REVOKED,
                      timeout=10)  # the in-flight mark alone would have held it for 30 s


def test_the_sdk_can_complete_again_after_the_request_never_arrived(serve, tcp_proxy) -> None:
    running = serve()
    address = urlsplit(running.url)
    proxy = tcp_proxy(address.hostname, address.port)
    proxy.start()
    via_proxy = BrokerClient(f"http://127.0.0.1:{proxy.port}")
    started = running.client("orchestrator").start_task("demo-agent", "t", ["reports:read"])
    task = via_proxy.task(started.task_id, started.grant, handle_sigterm=False).__enter__()
    secret = task.secret("token", ["reports:read"])
    lease_id, value = secret.lease_id, secret.value
    proxy.stop()
    with pytest.raises(httpx.TransportError):
        task.complete()
    assert running.broker.store.get_lease(lease_id).state is LeaseState.ACTIVE
    proxy.start()
    task.complete()
    assert running.broker.store.get_lease(lease_id).state is LeaseState.REVOKED
    assert running.client("resource").introspect(value)["active"] is False
