"""``jitsec incidents``: the analyst's side of the fleet's incidents, through the broker's API.

The broker's URL comes from ``--broker`` or ``$JITSEC_BROKER_URL``; the key ONLY from
``$JITSEC_ANALYST_KEY`` (or ``$JITSEC_ADMIN_KEY``): an argument would land in shell history and in
the process list. Output is a table, or the API's JSON with ``--json``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import click

from jitsec.broker.client import BrokerAPIError, BrokerClient

URL_ENV, KEY_ENVS = "JITSEC_BROKER_URL", ("JITSEC_ANALYST_KEY", "JITSEC_ADMIN_KEY")
EXIT_HELP = "Exit status: 0 done, 2 for bad input, a missing key, or a refusal from the broker."


class CommandError(click.ClickException):
    exit_code = 2


def _client(broker_url: str | None) -> BrokerClient:
    if not broker_url:
        raise CommandError(f"no broker: pass --broker URL or set ${URL_ENV}")
    if not broker_url.startswith(("http://", "https://")):
        raise CommandError(f"{broker_url!r} is not an http(s):// URL")
    key = next((os.environ[name] for name in KEY_ENVS if os.environ.get(name)), None)
    if key is None:
        raise CommandError(f"set ${KEY_ENVS[0]} to the analyst principal's key (or ${KEY_ENVS[1]})")
    return BrokerClient(broker_url, key=key)


def _call(broker_url: str | None, work: Callable[[BrokerClient], Any]) -> Any:
    with _client(broker_url) as client:
        try:
            return work(client)
        except BrokerAPIError as error:
            raise CommandError(f"the broker refused: {error.status} {error.code}: {error.detail}") from None
        except OSError as error:
            raise CommandError(f"cannot reach the broker at {broker_url}: {error}") from None


BROKER = click.option("--broker", "broker_url", metavar="URL", envvar=URL_ENV, default=None,
                      help=f"The broker's base URL (or ${URL_ENV}).")
AS_JSON = click.option("--json", "as_json", is_flag=True, help="Print the API's JSON instead of a table.")


def _when(at: float | None) -> str:
    return "-" if at is None else datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


@click.group("incidents")
def incidents_group() -> None:
    """The fleet's incidents: one per leaked secret, whichever scanners saw it.

    \b
    Example:
      export JITSEC_BROKER_URL=https://broker:8470 JITSEC_ANALYST_KEY=jitk_...
      jitsec incidents list --status open --severity critical
    \b
    Exit status: 0 done, 2 for bad input, a missing key, or a refusal from the broker.
    """


@incidents_group.command("list")
@BROKER
@AS_JSON
@click.option("--status", multiple=True, type=click.Choice(["open", "acknowledged", "resolved",
                                                            "false_positive"]), help="Repeat for several.")
@click.option("--severity", multiple=True, type=click.Choice(["low", "medium", "high", "critical"]))
@click.option("--rule", default=None, help="A rule id (e.g. aws-access-key).")
@click.option("--agent", default=None, help="The agent whose leaked lease it was.")
@click.option("--source", default=None, help="file, git, kafka, elasticsearch, stream.")
@click.option("--since", type=float, default=None, help="Last seen at or after (UNIX seconds).")
@click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True)
@click.option("--cursor", default=None, help="The next_cursor a previous page gave.")
def list_incidents(broker_url: str | None, as_json: bool, **filters: Any) -> None:
    """List incidents, newest first.

    \b
    Example:
      jitsec incidents list --status open --status acknowledged --source kafka
      jitsec incidents list --json --limit 500 | jq '.incidents[].incident_id'
    \b
    Exit status: 0 done, 2 for bad input, a missing key, or a refusal from the broker.
    """
    page = _call(broker_url, lambda c: c.incidents(**filters))
    if as_json:
        _print_json(page)
        return
    from rich.console import Console  # noqa: PLC0415 - only a table pays for rich
    from rich.table import Table  # noqa: PLC0415

    table = Table("incident", "status", "severity", "rule", "preview", "sightings", "last seen", "assignee")
    for item in page["incidents"]:
        table.add_row(item["incident_id"], item["status"], item["severity"], item["rule_id"], item["preview"],
                      str(item["sightings"]), _when(item["last_seen"]), item["assignee"] or "-")
    console = Console()
    if not console.is_terminal:  # piped: no terminal width to honour, keep ids whole
        console = Console(width=200)
    console.print(table)
    if page["next_cursor"]:
        click.echo(f"more: --cursor {page['next_cursor']}")


@incidents_group.command("show")
@BROKER
@AS_JSON
@click.argument("incident_id")
def show(broker_url: str | None, as_json: bool, incident_id: str) -> None:
    """Show one incident: its sightings and its timeline.

    \b
    Example:
      jitsec incidents show inc_4f0c2a9e81b7d3c6a5e4f201
    \b
    Exit status: 0 done, 2 for bad input, a missing key, or a refusal from the broker.
    """
    detail = _call(broker_url, lambda c: c.incident(incident_id))
    if as_json:
        _print_json(detail)
        return
    incident = detail["incident"]
    for label, key in (("incident", "incident_id"), ("status", "status"), ("severity", "severity"),
                       ("rule", "rule_id"), ("preview", "preview"), ("fingerprint", "fingerprint"),
                       ("sightings", "sightings"), ("assignee", "assignee"), ("response", "action"),
                       ("lease", "lease_id"), ("agent", "agent")):
        click.echo(f"{label:>12}: {incident[key] if incident[key] is not None else '-'}")
    click.echo(f"{'revoked at':>12}: {_when(incident['revoked_at'])}")
    click.echo("\nsightings:")
    for sighting in detail["sightings"]:
        click.echo(f"  {_when(sighting['seen_at'])}  {sighting['scanner']}@{sighting['host']}  "
                   f"{sighting['source']} {sighting['location']}")
    click.echo("\ntimeline:")
    for entry in detail["timeline"]:
        click.echo(f"  {_when(entry['at'])}  {entry['kind']:<9} {entry['by']}: {entry['text']}")


def _status_command(name: str, action: str, summary: str) -> None:
    @incidents_group.command(name, help=f"""{summary}

    \b
    Example:
      jitsec incidents {name} inc_4f0c2a9e81b7d3c6a5e4f201 --reason "rotated at the provider"
    \b
    {EXIT_HELP} A move the status does not allow (e.g. ack of a resolved incident) is refused.
    """)
    @BROKER
    @AS_JSON
    @click.argument("incident_id")
    @click.option("--reason", default="", help="Kept with who and when.")
    def command(broker_url: str | None, as_json: bool, incident_id: str, reason: str) -> None:
        after = _call(broker_url, lambda c: c.act_on_incident(incident_id, action, reason=reason))
        _print_json(after) if as_json else click.echo(f"{incident_id}: {after['status']}")


_status_command("ack", "ack", "Acknowledge an open incident: someone is on it.")
_status_command("resolve", "resolve", "Resolve an incident (the secret is revoked or rotated).")
_status_command("reopen", "reopen", "Reopen an acknowledged, resolved or false-positive incident.")
_status_command("false-positive", "false_positive", "Close an incident as a false positive.")


@incidents_group.command("assign")
@BROKER
@AS_JSON
@click.argument("incident_id")
@click.argument("assignee", required=False, default="")
def assign(broker_url: str | None, as_json: bool, incident_id: str, assignee: str) -> None:
    """Give an incident to ASSIGNEE (none given: to nobody).

    \b
    Example:
      jitsec incidents assign inc_4f0c2a9e81b7d3c6a5e4f201 ana
    \b
    Exit status: 0 done, 2 for bad input, a missing key, or a refusal from the broker.
    """
    after = _call(broker_url, lambda c: c.act_on_incident(incident_id, "assign", assignee=assignee or None))
    who = after["assignee"] or "nobody"
    _print_json(after) if as_json else click.echo(f"{incident_id}: assigned to {who}")


@incidents_group.command("note")
@BROKER
@AS_JSON
@click.argument("incident_id")
@click.argument("text")
def note(broker_url: str | None, as_json: bool, incident_id: str, text: str) -> None:
    """Add a note to an incident's timeline.

    \b
    Example:
      jitsec incidents note inc_4f0c2a9e81b7d3c6a5e4f201 "owner asked to rotate by noon"
    \b
    Exit status: 0 done, 2 for bad input, a missing key, or a refusal from the broker.
    """
    after = _call(broker_url, lambda c: c.act_on_incident(incident_id, "note", text=text))
    _print_json(after) if as_json else click.echo(f"{incident_id}: note added")
