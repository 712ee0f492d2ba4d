"""Test 8.6, compromised environment (section 6, advanced; requirements 4.3-4.5): after the task, an
attacker who owns the agent's environment extracts candidates, and none of them works.

The agent (a real process, rotating its token once mid-task, requirement 4.9) completes its task and
stays alive. The attacker, knowing nothing, reads its environment (``/proc/<pid>/environ``), every
file it could write, and a memory image (``gcore``, or ``/proc/<pid>/mem`` of the paused process),
runs the project's scanner over all of it, and tries every broker-format candidate at its resource:
engine tokens by introspection, task tokens and grants at the broker, database passwords by logging
in. Then a post-task replay tries every credential the task held (including the one rotated out).
"""

from __future__ import annotations

import shutil

from jitsec.conformance.agent_process import AgentProcess, AgentReport
from jitsec.conformance.attacker import DumpFailed, dump_memory, environ
from jitsec.conformance.context import Context, Recorder
from jitsec.conformance.model import Searched
from jitsec.conformance.resources import Probe, grant_probe, task_token_probe, token_probe
from jitsec.conformance.scope import refused
from jitsec.conformance.search import Candidate, SecretSearch, read_limited, walk_files
from jitsec.conformance.storage import agent_requests, job
from jitsec.kernel.credential_format import CredentialKind, parse
from jitsec.kernel.redaction import preview

TEST_ID = "8.6"
TITLE = "Compromised environment credential extraction"
REQUIREMENT = "4.3, 4.4, 4.5 (section 6: advanced)"


class Attempts:
    """Tries credentials at their resources for one task; remembers the usernames the task held."""

    def __init__(self, ctx: Context, task_id: str, report: AgentReport) -> None:
        self.ctx, self.task_id = ctx, task_id
        self.usernames = sorted({s.username for s in report.secrets if s.username})

    def probe(self, value: str) -> Probe | None:  # noqa: PLR0911 - one exit per credential kind
        """Whether ``value`` works anywhere it could; None if it is no broker-format credential."""
        parsed = parse(value)
        if parsed is None:
            return None
        ctx = self.ctx
        if parsed.prefix == "jit_":
            return token_probe(ctx.resource, value)
        if parsed.prefix == "jitt_":
            return task_token_probe(ctx.anonymous, value, self.task_id)
        if parsed.kind is CredentialKind.TASK_GRANT:
            return grant_probe(ctx.anonymous, value, self.task_id)
        if parsed.prefix == "jitpg_" and ctx.postgres is not None:
            for username in self.usernames:
                probe = ctx.postgres.login(username, value)
                if probe.works:
                    return Probe(True, f"login accepted as {username}")
            return Probe(False, f"login refused for {len(self.usernames)} role(s)")
        return Probe(False, f"prefix {parsed.prefix}: no resource to try it at")


def run(ctx: Context, rec: Recorder) -> None:
    scopes, requests = agent_requests(ctx, rotate=True)
    started = ctx.start_task(rec, ctx.agent(rec, "compromise"), scopes, ttl_seconds=300, label="8.6")
    sandbox = ctx.work_dir / f"agent-8.6-{ctx.run_id}"
    attacker = SecretSearch(ctx.scanner())  # the attacker knows no secret
    candidates: list[Candidate] = []
    with AgentProcess(ctx.settings.agent_command, sandbox) as agent:
        report = agent.run_task(job(ctx, started, requests))
        ctx.ledger.add(*report.values())
        data = environ(agent.pid)
        found = attacker.candidates(data, "environment")
        rec.searched.append(
            Searched(
                "agent environment",
                1,
                len(data),
                tuple(c.shown for c in found),
                "/proc/<pid>/environ, scanner",
            )
        )
        candidates += found
        files = walk_files(agent.roots)
        found, size = [], 0
        for path in files:
            blob = read_limited(path)
            size += len(blob)
            found += attacker.candidates(blob, f"file {path.name}")
        rec.searched.append(
            Searched(
                "files the agent could write",
                len(files),
                size,
                tuple(c.shown for c in found),
                "scanner (raw, base64, hex)",
            )
        )
        candidates += found
        candidates += _memory(ctx, rec, attacker, agent, report)
    attempts = Attempts(ctx, started.task_id, report)
    broker_format = {c.value: c for c in candidates if parse(c.value) is not None}
    rec.fact("candidates", str(len(broker_format)))
    live = []
    for value, candidate in broker_format.items():
        probe = attempts.probe(value)
        if probe is not None and probe.works:
            live.append(f"{candidate.shown}: {probe.reason}")
    rec.check(
        "every extracted candidate fails at its resource",
        not live,
        f"{len(broker_format)} broker-format candidates tried; live: {'; '.join(live) or 'none'}",
    )
    _replay(ctx, rec, attempts, started.grant, report)
    rotated = [s for s in report.secrets if s.replaced]
    rec.check(
        "mid-task rotation replaced the token with a new one",
        bool(rotated) and all(value != s.value for s in rotated for _, value in s.replaced),
        f"{len(rotated)} rotation(s)",
    )
    rec.fact("rotation", "yes" if rotated else "no")
    shutil.rmtree(sandbox, ignore_errors=True)
    ctx.cleanup([started.task_id])


def _memory(
    ctx: Context, rec: Recorder, attacker: SecretSearch, agent: AgentProcess, report: AgentReport
) -> list[Candidate]:
    if ctx.settings.memory_dump == "none":
        rec.note("memory dump disabled (--memory-dump none)")
        return []
    directory = agent.sandbox / "attacker"
    try:
        image, method = dump_memory(agent.pid, directory, ctx.settings.memory_dump)
    except DumpFailed as error:
        rec.check("a memory image of the agent could be taken", False, str(error))
        return []
    try:
        data = read_limited(image)
        found = attacker.candidates(data, f"memory ({method})", decode=False)
        in_memory = sum(1 for value in report.values() if value.encode() in data)
        rec.note(
            f"{in_memory} of the {len(report.values())} credentials the task held were still in the "
            "agent's memory after completion (each must be dead)"
        )
        rec.searched.append(
            Searched("agent memory image", 1, len(data), tuple(c.shown for c in found), f"{method}, scanner")
        )
        return found
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _replay(ctx: Context, rec: Recorder, attempts: Attempts, grant: str, report: AgentReport) -> None:
    held = [grant, *report.values()]
    live = []
    for value in held:
        probe = attempts.probe(value)
        if probe is not None and probe.works:
            live.append(f"{preview(value)}: {probe.reason}")
    rec.check(
        "post-task replay of every credential the task held fails",
        not live,
        f"{len(held)} credentials replayed; live: {'; '.join(live) or 'none'}",
    )
    ok, detail = refused(
        lambda: ctx.anonymous.request(
            "POST", "/v1/secrets", bearer=report.task_token, json={"engine": "token", "scopes": [ctx.READ]}
        ),
        (401, 403),
    )
    rec.check("the task token cannot obtain new secrets after the task", ok, detail)
