"""``jitsec demo``: the whole loop on one machine, no external service, in a few seconds.

A broker (SQLite store, token engine) serves on loopback; an orchestrator starts a task for
``demo-agent``; the agent redeems its grant, obtains a ``jit_`` token through the SDK and then leaks
it into a log file; the scanner tails that file, finds the token, reports its fingerprint to the
broker, which revokes the lease; a resource server's introspection turns inactive. The demo shows the
incident, the audit trail of the lease and the measured latencies. The pieces live in
``jitsec.embedded``.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from jitsec.broker.audit import event_to_dict
from jitsec.connectors.sinks.console import incident_panel
from jitsec.embedded import AGENT, EmbeddedBroker, IncidentLog, LoopScanner, wait_inactive
from jitsec.kernel.credential_format import sha256_fingerprint
from jitsec.kernel.records import Incident
from jitsec.kernel.schemas import INCIDENT
from jitsec.pipeline.builder import EngineName
from jitsec.scanner.ruleset import RuleSet


def run_demo(directory: Path, *, timeout: float = 8.0, say: Callable[[str], None] = lambda _: None,
             ruleset: RuleSet | None = None, engine: EngineName = "auto") -> dict:
    """Run the loop once in ``directory``; returns the machine-readable summary."""
    started_at = time.monotonic()
    log_path = directory / "agent.log"
    log_path.write_text("")
    broker = EmbeddedBroker(directory).start()
    sink = IncidentLog()
    loop: LoopScanner | None = None
    try:
        say(f"broker listening on {broker.url} (SQLite store, token engine)")
        loop = LoopScanner(log_path, broker.url, broker.keys["scanner"], directory / "state", [sink],
                           ruleset=ruleset, engine=engine).start()
        say(f"scanner ({loop.scanner.engine} matcher, {len(loop.scanner.rules)} rules) tailing {log_path}")
        orchestrator, resource = broker.client("orchestrator"), broker.client("resource")
        task = orchestrator.start_task(AGENT, "nightly report", ["reports:read"], ttl_seconds=600)
        say(f"orchestrator started task {task.task_id} for {AGENT}")
        with broker.client().task(task.task_id, task.grant, handle_sigterm=False) as agent:
            secret = agent.secret("token", scopes=["reports:read"])
            token = secret.value
            active_before = resource.introspect(token, resource="demo-reports-api")["active"]
            say(f"agent obtained {secret} (introspection active={active_before})")
            written_at = time.monotonic()
            with log_path.open("a", encoding="utf-8") as log:  # the leak: a debug line with the header
                log.write(f"DEBUG reports-client: GET /v1/reports Authorization: Bearer {token}\n")
            say("agent leaked the token into its log")
            inactive_at = wait_inactive(resource, token, timeout)
            lease_id, fingerprint = secret.lease_id, sha256_fingerprint(token)
            sink.revoked.wait(max(0.0, timeout - (time.monotonic() - written_at)))
            active_after = resource.introspect(token, resource="demo-reports-api")["active"]
        del token
        incidents = list(sink.latest.values())
        audit = [event_to_dict(r.event) for r in broker.broker.store.audit_records(0, 10_000)
                 if r.event.lease_id == lease_id
                 or (r.event.task_id == task.task_id and not r.event.lease_id)]
        incident = incidents[0] if incidents else None
        return {
            "revoked": inactive_at is not None and not active_after,
            "latency_ms": None if inactive_at is None else round((inactive_at - written_at) * 1000, 1),
            "detect_to_revoke_ms": incident.latency_ms if incident else None,
            "lease_id": lease_id,
            "task_id": task.task_id,
            "agent": AGENT,
            "fingerprint": fingerprint,
            "introspection_active_before": active_before,
            "introspection_active_after": active_after,
            "incidents": len(incidents),
            "incident": None if incident is None else _incident_json(incident),
            "audit": audit,
            "duration_s": round(time.monotonic() - started_at, 2),
        }
    finally:
        if loop is not None:
            loop.close()
        broker.close()


def _incident_json(incident: Incident) -> dict[str, Any]:
    return INCIDENT.to_dict(incident)


def _collapse(events: list[dict]) -> list[tuple[dict, int]]:
    """Consecutive identical events (the resource server polling introspection) shown once, counted."""
    rows: list[tuple[dict, int]] = []
    for event in events:
        key = (event["kind"], event["principal"], event["detail"])
        if rows and (rows[-1][0]["kind"], rows[-1][0]["principal"], rows[-1][0]["detail"]) == key:
            rows[-1] = (rows[-1][0], rows[-1][1] + 1)
        else:
            rows.append((event, 1))
    return rows


def _show(console: Console, summary: dict) -> None:
    if summary["incident"]:
        console.print(incident_panel(INCIDENT.from_dict(summary["incident"])))
    table = Table(title=f"audit trail of lease {summary['lease_id']}", show_lines=False)
    for column in ("when", "kind", "principal", "detail"):
        table.add_column(column)
    for event, repeats in _collapse(summary["audit"]):
        when = time.strftime("%H:%M:%S", time.localtime(event["at"])) + f".{int(event['at'] % 1 * 1000):03d}"
        kind = str(event["kind"]) + (f" ×{repeats}" if repeats > 1 else "")
        table.add_row(when, kind, str(event["principal"]), str(event["detail"])[:160])
    console.print(table)
    verdict = "[bold green]REVOKED[/]" if summary["revoked"] else "[bold red]NOT REVOKED[/]"
    console.print(f"{verdict}: introspection active before={summary['introspection_active_before']}, "
                  f"after={summary['introspection_active_after']}")
    console.print(f"leak → credential dead: [bold]{summary['latency_ms']} ms[/] "
                  f"(line read → broker confirmed: {summary['detect_to_revoke_ms']} ms); "
                  f"demo took {summary['duration_s']} s")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable summary instead.")
@click.option("--keep", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Run in this directory and keep it (broker database, log, spools).")
@click.option("--timeout", type=float, default=8.0, show_default=True,
              help="Seconds to wait for the revocation before giving up.")
@click.option("--engine", type=click.Choice(["python", "hyperscan", "auto"]), default="auto",
              show_default=True,
              help="Matcher for the tailed log: auto uses Hyperscan when installed (its compiled database is "
                   "cached after the first run); the pure-Python matcher finds the same secrets.")
def demo(as_json: bool, keep: Path | None, timeout: float, engine: EngineName) -> None:
    """Leak a broker-issued token into a log and watch the scanner get it revoked.

    Starts a broker (SQLite, token engine) on loopback, runs an agent task that obtains a token and
    writes it into a log file, tails that file with the scanner, and shows the incident, the audit
    trail and the leak-to-revocation latency. Needs no external service.

    \b
    Examples:
      jitsec demo                        the story, step by step
      jitsec demo --json | jq .latency_ms
      jitsec demo --keep ./demo          keep the log, the broker's database and the spools
    \b
    Exit status: 0 revoked, 1 the token was not revoked in time.
    """
    logging.basicConfig(level=logging.ERROR)
    console = Console(stderr=as_json, emoji=False)
    say = (lambda _: None) if as_json else (lambda text: console.print(f"[dim]•[/] {text}"))
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        summary = run_demo(keep, timeout=timeout, say=say, engine=engine)
    else:
        with tempfile.TemporaryDirectory(prefix="jitsec-demo-") as directory:
            summary = run_demo(Path(directory), timeout=timeout, say=say, engine=engine)
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        _show(console, summary)
    if not summary["revoked"]:
        raise SystemExit(1)
