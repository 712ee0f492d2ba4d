"""Test 8.5, absence from persistent storage (requirement 4.4): after a task, no secret the agent was
issued is anywhere it could persist.

A real agent process (``jitsec.conformance.agent``) runs the task in a sandbox and stays alive, idle.
The suite then searches, with the project's scanner and for every issued secret in plain, base64,
hex and URL-encoded form: the agent's environment (``/proc/<pid>/environ``), everything under its
working directory, home and temporary directory, and, with ``--config``, the broker's store (the
SQLite files, or the task's records for a PostgreSQL store), its audit and the ``--broker-log`` files.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from jitsec.broker.client import StartedTask
from jitsec.conformance.agent_process import AgentProcess
from jitsec.conformance.attacker import environ
from jitsec.conformance.context import Context, Recorder
from jitsec.conformance.model import Searched
from jitsec.conformance.resources import GRANTED_TABLE, SELECT_GRANTED
from jitsec.conformance.search import SecretSearch, read_limited, walk_files

TEST_ID = "8.5"
TITLE = "Secret absence from persistent storage"
REQUIREMENT = "4.4"


def agent_requests(ctx: Context, *, rotate: bool = False) -> tuple[list[str], list[dict[str, Any]]]:
    """The scopes of an agent task and the secret requests its agent makes."""
    requests: list[dict[str, Any]] = [
        {"engine": "token", "scopes": [ctx.READ], "ttl_seconds": 120, "rotate": rotate}
    ]
    scopes = [ctx.READ]
    if ctx.postgres is not None:
        scope = ctx.postgres.scope(GRANTED_TABLE, "SELECT")
        scopes.append(scope)
        requests.append(
            {"engine": "postgres", "scopes": [scope], "ttl_seconds": 120, "statement": SELECT_GRANTED}
        )
    return scopes, requests


def job(ctx: Context, started: StartedTask, requests: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "broker": ctx.settings.broker_url,
        "task_id": started.task_id,
        "grant": started.grant,
        "requests": requests,
    }


def search_blob(rec: Recorder, search: SecretSearch, target: str, data: bytes, method: str) -> list[str]:
    hits = [h.shown for h in search.known_hits(data, target)]
    rec.searched.append(_searched(target, 1, len(data), hits, method))
    return hits


def search_files(rec: Recorder, search: SecretSearch, target: str, files: Sequence[Any]) -> list[str]:
    hits: list[str] = []
    size = 0
    for path in files:
        try:
            data = read_limited(path)
        except OSError as error:
            rec.note(f"could not read {path}: {error.strerror}")
            continue
        size += len(data)
        hits.extend(h.shown for h in search.known_hits(data, str(path)))
        known = search.known_values
        hits.extend(c.shown for c in search.candidates(data, str(path)) if c.value in known)
    hits = list(dict.fromkeys(hits))
    rec.searched.append(
        _searched(
            target,
            len(files),
            size,
            hits,
            "scanner (raw, base64, hex) + issued secrets in plain/base64/hex/url form",
        )
    )
    return hits


def _searched(target: str, files: int, size: int, hits: Sequence[str], method: str) -> Searched:
    return Searched(target, files, size, tuple(hits), method)


def run(ctx: Context, rec: Recorder) -> None:
    scopes, requests = agent_requests(ctx)
    started = ctx.start_task(rec, ctx.agent(rec, "storage"), scopes, ttl_seconds=300, label="8.5")
    with AgentProcess(ctx.settings.agent_command, ctx.work_dir / f"agent-8.5-{ctx.run_id}") as agent:
        report = agent.run_task(job(ctx, started, requests))
        ctx.ledger.add(*report.values())
        search = SecretSearch(ctx.scanner(), [started.grant, *report.values()])
        rec.fact("secrets_issued", str(len(report.values())))
        hits = search_blob(rec, search, "agent environment", environ(agent.pid), "/proc/<pid>/environ")
        env_candidates = search.candidates(environ(agent.pid), "agent environment")
        rec.check("no issued secret in the agent's environment", not hits, "; ".join(hits))
        rec.check(
            "no credential of any kind in the agent's environment",
            not env_candidates,
            "; ".join(c.shown for c in env_candidates),
        )
        files = walk_files(agent.roots)
        hits = search_files(rec, search, "agent working directory, home and temporary directory", files)
        rec.check("no issued secret in the files the agent could write", not hits, "; ".join(hits))
    audit = ctx.audit
    if audit is not None:
        if audit.store_files:
            hits = search_files(rec, search, "broker store (SQLite files)", list(audit.store_files))
        else:
            hits = search_blob(
                rec,
                search,
                "broker store (the task's lease rows)",
                audit.export_text(rec.task_ids).encode(),
                "rows read through the store API",
            )
        rec.check("no issued secret in the broker's store", not hits, "; ".join(hits))
        hits = search_blob(
            rec,
            search,
            "broker audit (the task's records)",
            audit.export_text(rec.task_ids).encode(),
            "records read through the store API",
        )
        rec.check("no issued secret in the broker's audit", not hits, "; ".join(hits))
    else:
        rec.note("no --config: the broker's store and audit were not searched")
    if ctx.settings.broker_logs:
        hits = search_files(rec, search, "broker logs", walk_files(list(ctx.settings.broker_logs)))
        rec.check("no issued secret in the broker's logs", not hits, "; ".join(hits))
    else:
        rec.note("no --broker-log: the broker's logs were not searched")
    ctx.cleanup([started.task_id])
