"""Test 8.3, scope constraint (requirement 4.1): a secret reaches exactly what its scope names, and a
request beyond policy is refused and audited.

Tokens: introspection shows exactly the scope asked for; a secret for a scope the task does not hold,
a task for a scope the agent's policy does not grant, and a TTL above the policy's maximum are all
refused; the agent's task token cannot act as the orchestrator or a resource server, and an engine
token is no task token. PostgreSQL (with ``--postgres``): a role granted ``SELECT`` on
``jitsec_conformance.granted`` reads it, and is refused ``SELECT`` on ``jitsec_conformance.other``,
``INSERT`` on its own table and ``CREATE``; roles beyond the task or the policy are refused. With
``--config`` every refusal must have its ``deny`` record in the audit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from jitsec.broker.client import BrokerAPIError
from jitsec.conformance.context import Context, Recorder
from jitsec.conformance.resources import (
    CREATE_IN_SCHEMA,
    GRANTED_TABLE,
    INSERT_GRANTED,
    OTHER_TABLE,
    SELECT_GRANTED,
    SELECT_OTHER,
)

TEST_ID = "8.3"
TITLE = "Scope constraint enforcement"
REQUIREMENT = "4.1"
TOO_LONG_TTL = 30_000_000  # far beyond any sane policy, below the API's own bound


def refused(call: Callable[[], Any], statuses: tuple[int, ...] = (403,)) -> tuple[bool, str]:
    """Whether the broker refused ``call`` with one of ``statuses``, and what it said."""
    try:
        call()
    except BrokerAPIError as error:
        return error.status in statuses, f"{error.status} {error.code}"
    except httpx.HTTPError as error:
        return False, f"request failed: {type(error).__name__}"
    return False, "accepted"


def run(ctx: Context, rec: Recorder) -> None:
    agent = ctx.agent(rec, "scope")
    started = ctx.start_task(rec, agent, [ctx.READ], ttl_seconds=120, label="8.3")
    task = ctx.enter(ctx.agent_task(started))
    token = ctx.secret(task, "token", [ctx.READ], 60)
    seen = ctx.resource.introspect(token.value, resource="jitsec-conformance")
    rec.check(
        "introspection shows exactly the requested scope, agent and task",
        seen.get("active") is True
        and seen.get("scopes") == [ctx.READ]
        and seen.get("agent") == agent
        and seen.get("task") == started.task_id,
        f"scopes {seen.get('scopes')}",
    )
    denials = 0
    for label, call in (
        (
            "secret for a scope the task does not hold refused",
            lambda: ctx.secret(task, "token", [ctx.WRITE], 60),
        ),
        (
            "task for a scope beyond the agent's policy refused",
            lambda: ctx.start_task(rec, agent, [ctx.BEYOND_POLICY], 60, label="8.3-beyond"),
        ),
        (
            "task with a TTL above the policy's maximum refused",
            lambda: ctx.start_task(rec, agent, [ctx.READ], TOO_LONG_TTL, label="8.3-ttl"),
        ),
    ):
        ok, detail = refused(call)
        denials += 1
        rec.check(label, ok, detail)
    ok, detail = refused(
        lambda: ctx.anonymous.request(
            "POST",
            "/v1/tasks",
            bearer=task.token,
            json={"agent": agent, "task": "escalate", "scopes": [ctx.WRITE], "ttl_seconds": 60},
        ),
        (401, 403),
    )
    rec.check("task token cannot start tasks (orchestrator role)", ok, detail)
    ok, detail = refused(
        lambda: ctx.anonymous.request(
            "POST", "/v1/introspect", bearer=task.token, json={"token": token.value}
        ),
        (401, 403),
    )
    rec.check("task token cannot introspect (resource role)", ok, detail)
    ok, detail = refused(
        lambda: ctx.anonymous.request(
            "POST", "/v1/secrets", bearer=token.value, json={"engine": "token", "scopes": [ctx.READ]}
        ),
        (401, 403),
    )
    rec.check("an engine token is not accepted as a task token", ok, detail)
    pg = ctx.postgres
    if pg is not None:
        denials += _postgres(ctx, rec, agent, pg)
    else:
        rec.note("no --postgres: table and privilege scopes not tested")
    task.complete()
    ctx.cleanup()
    if ctx.audit is not None:
        denies = [e for e in ctx.audit.of(rec.task_ids, [agent]) if e.kind == "deny"]
        rec.check(
            "every refusal is in the audit (kind deny, with agent and reason)",
            len(denies) >= denials,
            f"{len(denies)} deny records for {denials} refusals",
        )
    else:
        rec.note("no --config: refusals checked at the API only, the audit was not read")


def _postgres(ctx: Context, rec: Recorder, agent: str, pg: Any) -> int:
    granted = pg.scope(GRANTED_TABLE, "SELECT")
    started = ctx.start_task(rec, agent, [granted], ttl_seconds=120, label="8.3-pg")
    task = ctx.enter(ctx.agent_task(started))
    role = ctx.secret(task, "postgres", [granted], 60)
    user, password = role.username or "", role.value
    checks = (
        ("database role reads the table its scope names", SELECT_GRANTED, True),
        ("database role refused on another table", SELECT_OTHER, False),
        ("database role refused a privilege its scope does not name (INSERT)", INSERT_GRANTED, False),
        ("database role refused CREATE", CREATE_IN_SCHEMA, False),
    )
    for label, statement, allowed in checks:
        probe = pg.run(user, password, statement)
        rec.check(label, probe.works == allowed, probe.reason)
    denials = 0
    for label, call in (
        (
            "database secret for a privilege the task does not hold refused",
            lambda: ctx.secret(task, "postgres", [pg.scope(GRANTED_TABLE, "INSERT")], 60),
        ),
        (
            "task for a table beyond the agent's policy refused",
            lambda: ctx.start_task(rec, agent, [pg.scope(OTHER_TABLE, "SELECT")], 60, label="8.3-pg-beyond"),
        ),
    ):
        ok, detail = refused(call)
        denials += 1
        rec.check(label, ok, detail)
    task.complete()
    return denials
