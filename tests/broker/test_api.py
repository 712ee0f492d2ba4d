"""The HTTP API through a real uvicorn server: the public contract of issue 3, bad input included."""

from __future__ import annotations

import httpx
import pytest
from jitsec.broker.client import BrokerAPIError, BrokerClient
from jitsec.broker.model import AuditKind, LeaseState

from jitsec.kernel.credential_format import CredentialKind, is_valid, parse


def kinds(running) -> list[AuditKind]:
    return [r.event.kind for r in running.broker.store.audit_records(limit=100_000)]


def test_start_redeem_issue_complete(serve) -> None:
    running = serve()
    orchestrator = running.client("orchestrator")
    started = orchestrator.start_task("demo-agent", "weekly report", ["reports:read", "reports:write"], 600)
    assert parse(started.grant) is not None
    agent = running.client()
    token, expires_at = agent.redeem(started.task_id, started.grant)
    assert parse(token).kind is CredentialKind.TASK_TOKEN
    assert expires_at == pytest.approx(started.expires_at)
    body = agent.request(
        "POST",
        "/v1/secrets",
        bearer=token,
        json={"engine": "token", "scopes": ["reports:read"], "ttl_seconds": 120},
    )
    assert set(body) >= {"lease_id", "secret", "expires_at", "engine", "scopes"}
    assert parse(body["secret"]).kind is CredentialKind.ENGINE_TOKEN
    assert body["scopes"] == ["reports:read"]
    done = agent.complete_task(started.task_id, bearer=token)
    assert done == {"task_id": started.task_id, "completed": True, "revoked": 2, "retrying": 0, "failed": 0}
    again = orchestrator.complete_task(started.task_id)
    assert again["completed"] is False and again["revoked"] == 0  # idempotent
    lease = running.broker.store.get_lease(body["lease_id"])
    assert lease.state is LeaseState.REVOKED and lease.revoke_reason == "task_complete"
    assert AuditKind.REVOKE in kinds(running)


def test_grant_is_single_use_and_replay_is_audited(serve) -> None:
    running = serve()
    started = running.client("orchestrator").start_task("demo-agent", "t", ["reports:read"])
    agent = running.client()
    agent.redeem(started.task_id, started.grant)
    with pytest.raises(BrokerAPIError) as refused:
        agent.redeem(started.task_id, started.grant)
    assert refused.value.status == 401 and refused.value.code == "grant_replayed"
    assert AuditKind.REPLAY in kinds(running)


def test_expired_grant_is_refused(serve, env, clock) -> None:
    running = serve(clock=clock)
    started = running.client("orchestrator").start_task("demo-agent", "t", ["reports:read"])
    clock.advance(301)
    with pytest.raises(BrokerAPIError) as refused:
        running.client().redeem(started.task_id, started.grant)
    assert refused.value.status == 401 and refused.value.code == "grant_expired"


def test_policy_refusals_say_why_and_are_audited(serve) -> None:
    running = serve()
    orchestrator = running.client("orchestrator")
    with pytest.raises(BrokerAPIError) as scope:
        orchestrator.start_task("demo-agent", "t", ["payroll:read"])
    assert scope.value.status == 403 and "payroll:read" in scope.value.detail
    with pytest.raises(BrokerAPIError) as ttl:
        orchestrator.start_task("demo-agent", "t", ["reports:read"], ttl_seconds=3600)
    assert ttl.value.status == 403 and "900" in ttl.value.detail
    with pytest.raises(BrokerAPIError) as unknown:
        orchestrator.start_task("stranger", "t", ["reports:read"])
    assert unknown.value.code == "unknown_agent"
    assert kinds(running).count(AuditKind.DENY) == 3


def test_secret_requests_stay_within_task_engine_and_ttl(serve) -> None:
    running = serve()
    started = running.client("orchestrator").start_task("demo-agent", "t", ["reports:read"], 600)
    with running.client().task(started.task_id, started.grant) as task:
        with pytest.raises(BrokerAPIError) as outside:
            task.secret("token", ["reports:write"])  # allowed by policy, not by this task
        assert outside.value.status == 403 and outside.value.code == "scope_denied"
        with pytest.raises(BrokerAPIError) as too_long:
            task.secret("token", ["reports:read"], ttl_seconds=901)
        assert too_long.value.status == 403 and "maximum of 900 seconds" in too_long.value.detail
        with pytest.raises(BrokerAPIError) as engine:
            task.secret("vault", ["reports:read"])
        assert engine.value.status == 404 and engine.value.code == "unknown_engine"
        capped = task.secret("token", ["reports:read"], ttl_seconds=900)
        assert capped.expires_at == pytest.approx(started.expires_at)  # never beyond the task's end
        values = {task.secret("token", ["reports:read"]).value for _ in range(20)}
        assert len(values) == 20 and capped.value not in values
    issued = [
        lease for lease in running.broker.store.leases_of_task(started.task_id) if lease.engine == "token"
    ]
    assert len(issued) == 21  # the refused requests left nothing behind


def test_authentication_and_roles(serve) -> None:
    running = serve()
    url = running.url
    assert httpx.post(f"{url}/v1/tasks", json={}).status_code == 401
    wrong = httpx.post(f"{url}/v1/tasks", headers={"Authorization": "Bearer jitk_nope"}, json={})
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
    for role in ("scanner", "resource"):
        with pytest.raises(BrokerAPIError) as forbidden:
            running.client(role).start_task("demo-agent", "t", ["reports:read"])
        assert forbidden.value.status == 403
    with pytest.raises(BrokerAPIError) as orchestrator_introspects:
        running.client("orchestrator").introspect("jit_x")
    assert orchestrator_introspects.value.status == 403
    started = running.client("orchestrator").start_task("demo-agent", "t", ["reports:read"])
    other = running.client("orchestrator").start_task("demo-agent", "u", ["reports:read"])
    with running.client().task(started.task_id, started.grant) as task:
        mine = task.secret("token", ["reports:read"])
        with running.client().task(other.task_id, other.grant) as intruder:
            with pytest.raises(BrokerAPIError) as theirs:
                running.client().revoke_lease(mine.lease_id, bearer=intruder.token)
            assert theirs.value.status == 403
            with pytest.raises(BrokerAPIError) as complete_other:
                running.client().complete_task(started.task_id, bearer=intruder.token)
            assert complete_other.value.status == 403
        with pytest.raises(BrokerAPIError) as grant_for_secrets:
            running.client().request(
                "POST",
                "/v1/secrets",
                bearer=started.grant,
                json={"engine": "token", "scopes": ["reports:read"]},
            )
        assert grant_for_secrets.value.status == 403


def test_introspection_records_use_and_turns_inactive(serve) -> None:
    running = serve()
    resource = running.client("resource")
    started = running.client("orchestrator").start_task("demo-agent", "t", ["reports:read"])
    with running.client().task(started.task_id, started.grant) as task:
        secret = task.secret("token", ["reports:read"])
        answer = resource.introspect(secret.value, resource="reports-api GET /reports/7")
        assert answer["active"] is True and answer["agent"] == "demo-agent"
        assert answer["task"] == started.task_id and answer["scopes"] == ["reports:read"]
        assert answer["exp"] == pytest.approx(secret.expires_at)
        assert resource.introspect(task.token) == {"active": False}  # task tokens are not for resources
        assert running.client().revoke_lease(secret.lease_id, bearer=task.token)["status"] == "revoked"
        assert resource.introspect(secret.value) == {"active": False}
        assert (
            running.client().revoke_lease(secret.lease_id, bearer=task.token)["status"] == "already_revoked"
        )
    uses = [r.event for r in running.broker.store.audit_records(limit=1000) if r.event.kind is AuditKind.USE]
    assert uses[0].resource == "reports-api GET /reports/7" and uses[0].lease_id == secret.lease_id
    assert uses[0].principal == "resource-1"


def test_rotation_with_and_without_grace(serve, clock) -> None:
    running = serve(clock=clock)
    resource = running.client("resource")
    started = running.client("orchestrator").start_task("demo-agent", "t", ["reports:read"])
    with running.client().task(started.task_id, started.grant) as task:
        first = task.secret("token", ["reports:read"])
        old_value, old_lease = first.value, first.lease_id
        first.rotate(grace_seconds=30)
        assert first.lease_id != old_lease and first.value != old_value
        assert resource.introspect(old_value)["active"] is True  # still inside the grace period
        clock.advance(31)
        assert resource.introspect(old_value)["active"] is False  # expiry holds even before the reaper
        second_value = first.value
        first.rotate()
        assert resource.introspect(second_value)["active"] is False
        assert resource.introspect(first.value)["active"] is True
    rotated = running.broker.store.get_lease(first.lease_id)
    assert rotated.rotated_from is not None


def test_quarantine_revokes_everything_and_blocks_new_tasks(serve) -> None:
    running = serve()
    orchestrator, admin = running.client("orchestrator"), running.client("admin")
    started = orchestrator.start_task("demo-agent", "t", ["reports:read"])
    task = running.client().task(started.task_id, started.grant).__enter__()
    secrets = [task.secret("token", ["reports:read"]) for _ in range(3)]
    with pytest.raises(BrokerAPIError):
        orchestrator.quarantine("demo-agent")
    result = admin.quarantine("demo-agent", reason="suspicious egress")
    assert result["tasks_completed"] == 1 and result["revoked"] == 4
    assert all(running.broker.store.get_lease(s.lease_id).state is LeaseState.REVOKED for s in secrets)
    with pytest.raises(BrokerAPIError) as blocked:
        orchestrator.start_task("demo-agent", "t2", ["reports:read"])
    assert blocked.value.code == "quarantined"
    admin.release("demo-agent")
    orchestrator.start_task("demo-agent", "t3", ["reports:read"])
    task.__exit__(None, None, None)  # the task ended already: completing again is quiet


@pytest.mark.parametrize("agent", ["", "a" * 129, "bad agent", "x\x00y", "../../etc", "agent\u202e", "é"])
def test_hostile_agent_names_are_refused(serve, agent: str) -> None:
    running = serve()
    with pytest.raises(BrokerAPIError) as refused:
        running.client("orchestrator").start_task(agent, "t", ["reports:read"])
    assert refused.value.status == 422


@pytest.mark.parametrize("task", ["", "x" * 201, "line\nbreak", "nul\x00", "bidi\u202e"])
def test_hostile_task_names_are_refused(serve, task: str) -> None:
    running = serve()
    with pytest.raises(BrokerAPIError) as refused:
        running.client("orchestrator").start_task("demo-agent", task, ["reports:read"])
    assert refused.value.status == 422


def test_malformed_and_oversized_bodies(serve, env) -> None:
    running = serve()
    headers = {"Authorization": f"Bearer {env.keys['orchestrator']}", "Content-Type": "application/json"}
    broken = httpx.post(f"{running.url}/v1/tasks", headers=headers, content=b'{"agent": ')
    assert broken.status_code == 422 and broken.json()["error"] == "bad_request"
    extra = httpx.post(
        f"{running.url}/v1/tasks",
        headers=headers,
        json={"agent": "demo-agent", "task": "t", "scopes": ["reports:read"], "admin": True},
    )
    assert extra.status_code == 422
    huge = httpx.post(f"{running.url}/v1/tasks", headers=headers, content=b"x" * 70_000)
    assert huge.status_code == 413 and huge.json()["error"] == "too_large"

    def chunks():
        for _ in range(100):
            yield b"y" * 1000

    streamed = httpx.post(f"{running.url}/v1/tasks", headers=headers, content=chunks())
    assert streamed.status_code == 413
    assert running.broker.store.audit_records() == []  # nothing was started


def test_validation_errors_never_echo_the_input(serve, env) -> None:
    running = serve()
    started = running.client("orchestrator").start_task("demo-agent", "t", ["reports:read"])
    with running.client().task(started.task_id, started.grant) as task:
        secret = task.secret("token", ["reports:read"]).value
    headers = {"Authorization": f"Bearer {env.keys['resource']}"}
    answer = httpx.post(
        f"{running.url}/v1/introspect", headers=headers, json={"token": [secret], "x": secret}
    )
    assert answer.status_code == 422
    assert secret not in answer.text


def test_unknown_things_are_404(serve) -> None:
    running = serve()
    admin = running.client("admin")
    for call in (
        lambda: admin.get_lease("lse_nope"),
        lambda: admin.complete_task("tsk_nope"),
        lambda: admin.revoke_lease("lse_nope"),
    ):
        with pytest.raises(BrokerAPIError) as missing:
            call()
        assert missing.value.status == 404


def test_health_metrics_and_openapi(serve) -> None:
    running = serve()
    assert httpx.get(f"{running.url}/healthz").json() == {"status": "ok", "key_custody": "file"}
    started = running.client("orchestrator").start_task("demo-agent", "t", ["reports:read"])
    with running.client().task(started.task_id, started.grant) as task:
        task.secret("token", ["reports:read"])
    metrics = httpx.get(f"{running.url}/metrics").text
    assert 'jitsec_broker_issued_total{engine="token"} 1.0' in metrics
    spec = httpx.get(f"{running.url}/openapi.json").json()
    for path in (
        "/v1/tasks",
        "/v1/tasks/{task_id}/redeem",
        "/v1/secrets",
        "/v1/tasks/{task_id}/complete",
        "/v1/leases/{lease_id}",
        "/v1/leases/{lease_id}/rotate",
        "/v1/introspect",
    ):
        assert path in spec["paths"]


def test_client_repr_never_shows_secrets(serve, env) -> None:
    running = serve()
    orchestrator = running.client("orchestrator")
    started = orchestrator.start_task("demo-agent", "t", ["reports:read"])
    assert started.grant not in repr(started) and env.keys["orchestrator"] not in repr(orchestrator)
    with BrokerClient(running.url).task(started.task_id, started.grant) as task:
        secret = task.secret("token", ["reports:read"])
        value = secret.value
        assert is_valid(value)
        for text in (repr(secret), str(secret), repr(task)):
            assert value not in text and task.token not in text
    with pytest.raises(RuntimeError):
        _ = secret.value  # purged when the task completed
