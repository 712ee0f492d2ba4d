"""Test 8.1, TTL enforcement (requirement 4.2): a short-lived secret stops working at the resource when
its TTL ends, within the allowed lateness, with the agent silent and its task still open.

The agent takes a token (and, with ``--postgres``, a database role and an open session), then does
nothing. After the expiry the suite measures, from the lease's ``expires_at``: when introspection
turns inactive, when the broker records the lease as no longer active (the reaper's revocation),
when a PostgreSQL login is refused and when the open session is ended.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from jitsec.conformance.context import Context, Recorder
from jitsec.conformance.resources import GRANTED_TABLE, SELECT_GRANTED, session_alive, token_probe, wait_for

TEST_ID = "8.1"
TITLE = "Secret TTL enforcement"
REQUIREMENT = "4.2"


def _lateness(expires_at: float, condition: Callable[[], bool], allowance: float) -> float | None:
    """Seconds after ``expires_at`` (broker clock, UNIX time) that ``condition`` first held."""
    remaining = expires_at - time.time()
    if remaining > 0:
        time.sleep(remaining)
    held_at = wait_for(condition, timeout=allowance + 2.0, interval=0.02)
    if held_at is None:
        return None
    return max(0.0, time.time() - (time.monotonic() - held_at) - expires_at)


def run(ctx: Context, rec: Recorder) -> None:
    settings = ctx.settings
    ttl, allowance = settings.ttl_seconds, settings.lateness_seconds
    agent = ctx.agent(rec, "ttl")
    pg = ctx.postgres
    scopes = [ctx.READ] + ([pg.scope(GRANTED_TABLE, "SELECT")] if pg else [])
    started = ctx.start_task(rec, agent, scopes, ttl_seconds=max(60, ttl * 10), label="8.1")
    task = ctx.enter(ctx.agent_task(started))
    token = ctx.secret(task, "token", [ctx.READ], ttl)
    rec.check("token works before its TTL", token_probe(ctx.resource, token.value).works)
    database = None
    session = None
    if pg is not None:
        database = ctx.secret(task, "postgres", [pg.scope(GRANTED_TABLE, "SELECT")], ttl)
        rec.check(
            "database login works before the TTL",
            pg.run(database.username or "", database.value, SELECT_GRANTED).works,
        )
        session = pg.connect(database.username or "", database.value)
    # The agent is silent from here on: nothing touches the secrets' values (no SDK auto-rotation).
    expires_at = ctx.lease(token.lease_id)["expires_at"]
    rec.fact("ttl_seconds", str(ttl))

    secret_value = token.value
    late = _lateness(expires_at, lambda: not token_probe(ctx.resource, secret_value).works, allowance)
    rec.check(
        "token inactive at introspection after its TTL",
        late is not None and late <= allowance,
        "never turned inactive" if late is None else f"{late:.3f} s after expiry",
        measured=late,
        limit=allowance,
    )
    late = _lateness(expires_at, lambda: ctx.lease(token.lease_id)["state"] != "active", allowance)
    lease = ctx.lease(token.lease_id)
    rec.check(
        "broker revoked the expired lease on its own (no completion, agent silent)",
        late is not None and late <= allowance,
        f"lease state {lease['state']}, reason {lease['revoke_reason']}",
        measured=late,
        limit=allowance,
    )
    rec.check(
        "the task was still open when the secret expired",
        ctx.orchestrator.get_task(started.task_id)["completed_at"] is None,
    )
    if pg is not None and database is not None and session is not None:
        username, password = database.username or "", database.value
        db_expires = ctx.lease(database.lease_id)["expires_at"]
        late = _lateness(db_expires, lambda: not pg.login(username, password).works, allowance)
        rec.check(
            "database login refused after the TTL",
            late is not None and late <= allowance,
            pg.login(username, password).reason,
            measured=late,
            limit=allowance,
        )
        late = _lateness(db_expires, lambda: not session_alive(session).works, allowance)
        rec.check(
            "open database session ended after the TTL",
            late is not None and late <= allowance,
            session_alive(session).reason,
            measured=late,
            limit=allowance,
        )
        session.close()
    else:
        rec.note("no --postgres: database credentials not tested")
    task.complete()
    ctx.cleanup([started.task_id])
