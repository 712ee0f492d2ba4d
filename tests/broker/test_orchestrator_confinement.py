"""A stolen orchestrator key reaches only the tasks that orchestrator started: another orchestrator's
tasks and leases read as unknown (404, no hint that they exist); admins reach every task."""

from __future__ import annotations

import httpx
from jitsec.broker.keys import key_hash, new_principal_key

from .conftest import ROLES


def test_an_orchestrator_cannot_read_complete_or_revoke_another_orchestrators_task(serve, env) -> None:
    other_key = new_principal_key()
    principals = [{"name": f"{role}-1", "role": role, "key_sha256": key_hash(env.keys[role])}
                  for role in ROLES]
    principals.append({"name": "orchestrator-2", "role": "orchestrator", "key_sha256": key_hash(other_key)})
    running = serve(config=env.config(principals=principals))
    owner = running.client("orchestrator")
    started = owner.start_task("demo-agent", "nightly", ["reports:read"])
    with running.client().task(started.task_id, started.grant, handle_sigterm=False) as task:
        secret = task.secret("token", ["reports:read"])
        with httpx.Client(base_url=running.url, headers={"Authorization": f"Bearer {other_key}"}) as other:
            for method, path in (("GET", f"/v1/tasks/{started.task_id}"),
                                 ("POST", f"/v1/tasks/{started.task_id}/complete"),
                                 ("GET", f"/v1/leases/{secret.lease_id}"),
                                 ("DELETE", f"/v1/leases/{secret.lease_id}")):
                answer = other.request(method, path)
                assert answer.status_code == 404, (method, path, answer.text)
                unknown = other.request(method, path.replace(started.task_id, "tsk_nope")
                                        .replace(secret.lease_id, "lse_nope"))
                assert unknown.status_code == 404 and answer.json()["error"] == unknown.json()["error"]
        assert running.client("resource").introspect(secret.value)["active"] is True  # untouched
        assert owner.request("GET", f"/v1/tasks/{started.task_id}")["completed_at"] is None
        assert running.client("admin").request("GET", f"/v1/leases/{secret.lease_id}")["state"] == "active"
    assert owner.request("GET", f"/v1/tasks/{started.task_id}")["completed_at"] is not None
