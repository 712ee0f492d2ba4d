"""The agent SDK: completes on exit, on exceptions and on SIGTERM; rotates transparently."""

from __future__ import annotations

import os
import signal

import pytest
from jitsec.broker.client import BrokerClient
from jitsec.broker.model import LeaseState

from jitsec.testing import ManualClock


def _start(running):
    return running.client("orchestrator").start_task("demo-agent", "t", ["reports:read"], ttl_seconds=600)


def test_task_completes_when_the_block_raises(serve) -> None:
    running = serve()
    started = _start(running)
    with pytest.raises(ZeroDivisionError), running.client().task(started.task_id, started.grant) as task:
        secret = task.secret("token", ["reports:read"])
        _ = 1 / 0
    assert running.broker.store.get_lease(secret.lease_id).state is LeaseState.REVOKED
    assert running.broker.store.get_task(started.task_id).completed_at is not None


def test_task_completes_on_sigterm(serve) -> None:
    running = serve()
    started = _start(running)
    previous = signal.getsignal(signal.SIGTERM)
    with (
        pytest.raises(SystemExit) as exit_info,
        running.client().task(started.task_id, started.grant) as task,
    ):
        secret = task.secret("token", ["reports:read"])
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(1000):  # the handler runs between bytecodes, almost at once
            pass
    assert exit_info.value.code == 128 + signal.SIGTERM
    assert running.broker.store.get_lease(secret.lease_id).state is LeaseState.REVOKED
    assert signal.getsignal(signal.SIGTERM) == previous  # the previous handler is back


def test_rotation_is_transparent(serve) -> None:
    running = serve()
    clock = ManualClock()
    started = _start(running)
    resource = running.client("resource")
    with BrokerClient(running.url, clock=clock).task(started.task_id, started.grant) as task:
        secret = task.secret("token", ["reports:read"], ttl_seconds=100)
        first_value, first_lease = secret.value, secret.lease_id
        clock.now += 81  # past 80% of its lifetime: the next read rotates
        second_value = secret.value
        assert second_value != first_value and secret.lease_id != first_lease
        assert resource.introspect(second_value)["active"] is True
        assert resource.introspect(first_value)["active"] is False
    assert running.broker.store.get_lease(secret.lease_id).rotated_from == first_lease
