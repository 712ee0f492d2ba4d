"""The public flow end to end over HTTP: start, redeem, issue, introspect, complete."""

from __future__ import annotations

from jitsec.broker.model import LeaseState


def test_flow(serve) -> None:
    running = serve()
    orchestrator = running.client("orchestrator")
    resource = running.client("resource")
    started = orchestrator.start_task("demo-agent", "weekly report", ["reports:read"], ttl_seconds=600)
    with running.client().task(started.task_id, started.grant) as task:
        secret = task.secret("token", scopes=["reports:read"])
        assert secret.value.startswith("jit_")
        assert resource.introspect(secret.value)["active"] is True
        held = secret.value
    assert resource.introspect(held) == {"active": False}
    assert running.broker.store.get_lease(secret.lease_id).state is LeaseState.REVOKED
