"""Test 8.4, uniqueness per agent per task (requirement 4.5): many agents x many tasks x several
requests, and no secret repeats; a grant works once; nothing of one task works for another.

Every grant, task token and secret the run obtains is compared; each token must introspect to its own
agent and task. The first task's grant is presented again (a replay must be refused, and audited with
``--config``). A task token must not act on another task of the same agent, and a secret of one task
is not even a credential at the broker (revocation on completion is 8.2's subject).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from jitsec.broker.client import AgentTask, StartedTask
from jitsec.conformance.context import Context, Issued, Recorder
from jitsec.conformance.resources import GRANTED_TABLE, grant_probe
from jitsec.conformance.scope import refused

TEST_ID = "8.4"
TITLE = "Secret uniqueness per agent per task"
REQUIREMENT = "4.5"


@dataclass
class _Task:
    agent: str
    started: StartedTask
    session: AgentTask
    secrets: list[Issued] = field(default_factory=list)


def _issue_all(ctx: Context, rec: Recorder) -> tuple[list[_Task], list[str]]:
    """Every agent x task x request of the run; failed requests are collected, not raised."""
    settings, pg = ctx.settings, ctx.postgres
    tasks: list[_Task] = []
    failures: list[str] = []
    for a in range(settings.agents):
        agent = ctx.agent(rec, "unique")
        for _ in range(settings.tasks_per_agent):
            scopes = [ctx.READ] + ([pg.scope(GRANTED_TABLE, "SELECT")] if pg else [])
            started = ctx.start_task(rec, agent, scopes, ttl_seconds=300, label=f"8.4-a{a}")
            entry = _Task(agent, started, ctx.enter(ctx.agent_task(started)))
            for _ in range(settings.requests_per_task):
                try:
                    entry.secrets.append(ctx.secret(entry.session, "token", [ctx.READ], 120))
                except Exception as error:  # a refused or failed issue is itself a finding
                    failures.append(f"{type(error).__name__}: {str(error)[:120]}")
            if pg is not None:
                entry.secrets.append(
                    ctx.secret(entry.session, "postgres", [pg.scope(GRANTED_TABLE, "SELECT")], 120)
                )
            tasks.append(entry)
    return tasks, failures


def run(ctx: Context, rec: Recorder) -> None:
    settings, pg = ctx.settings, ctx.postgres
    tasks, failures = _issue_all(ctx, rec)
    wanted = settings.agents * settings.tasks_per_agent * settings.requests_per_task
    issued = [s for t in tasks for s in t.secrets if s.engine == "token"]
    rec.check(
        "every secret request was served",
        not failures and len(issued) == wanted,
        f"{len(issued)} of {wanted} served" + (f"; first failure: {failures[0]}" if failures else ""),
    )
    everything = [s.value for t in tasks for s in t.secrets]
    everything += [t.session.token for t in tasks] + [t.started.grant for t in tasks]
    distinct = len(set(everything))
    rec.check(
        "all grants, task tokens and secrets are distinct",
        distinct == len(everything),
        f"{distinct} distinct of {len(everything)}",
    )
    rec.fact("credentials_compared", str(len(everything)))
    if pg is not None:
        users = [s.username for t in tasks for s in t.secrets if s.engine == "postgres"]
        rec.check("every database role is distinct", len(set(users)) == len(users), f"{len(users)} roles")
    misattributed = 0
    for entry in tasks:
        for secret in entry.secrets:
            if secret.engine != "token":
                continue
            seen = ctx.resource.introspect(secret.value, resource="jitsec-conformance")
            if seen.get("agent") != entry.agent or seen.get("task") != entry.started.task_id:
                misattributed += 1
    rec.check(
        "every token introspects to its own agent and task",
        misattributed == 0,
        f"{misattributed} attributed elsewhere",
    )
    first = tasks[0]
    replay = grant_probe(ctx.anonymous, first.started.grant, first.started.task_id)
    rec.check("a replayed grant is refused", not replay.works, replay.reason)
    if len(tasks) > 1 and tasks[1].agent == first.agent:
        _across_tasks(ctx, rec, first, tasks[1])
    else:
        rec.note("one task per agent: cross-task checks skipped (raise --tasks-per-agent)")
    if ctx.audit is not None:
        replays = [e for e in ctx.audit.of([first.started.task_id]) if e.kind == "replay"]
        rec.check("the replay is in the audit", bool(replays), f"{len(replays)} replay records")
    for entry in tasks:
        entry.session.complete()
    ctx.cleanup()


def _across_tasks(ctx: Context, rec: Recorder, first: _Task, second: _Task) -> None:
    bearer = first.session.token
    other = second.started.task_id
    ok, detail = refused(lambda: ctx.anonymous.get_task(other, bearer=bearer), (401, 403))
    rec.check("a task token cannot read another task of the same agent", ok, detail)
    ok, detail = refused(lambda: ctx.anonymous.complete_task(other, bearer=bearer), (401, 403))
    rec.check("a task token cannot complete another task", ok, detail)
    target = next(s for s in second.secrets if s.engine == "token")
    ok, detail = refused(lambda: ctx.anonymous.rotate_lease(target.lease_id, bearer=bearer), (401, 403))
    rec.check("a task token cannot rotate another task's secret", ok, detail)
    secret = next(s for s in first.secrets if s.engine == "token")
    ok, detail = refused(lambda: ctx.anonymous.get_task(other, bearer=secret.value), (401, 403))
    rec.check("a secret of one task is no credential for another task", ok, detail)
