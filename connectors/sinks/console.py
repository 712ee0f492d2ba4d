"""Console sink: a rich panel per incident on a terminal (stderr by default).

Not spooled: the terminal is local and cannot be "down"; printing is quick and never touches the
revocation path's durability. Preview and fingerprint only, like every sink.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from jitsec.kernel.records import Incident, ResponseAction, Severity
from jitsec.kernel.redaction import printable

_COLOURS = {Severity.CRITICAL: "bold red", Severity.HIGH: "red", Severity.MEDIUM: "yellow",
            Severity.LOW: "cyan"}
_ACTIONS = {
    ResponseAction.REVOKED: "[bold green]revoked[/]",
    ResponseAction.ALREADY_DEAD: "already dead (no action needed)",
    ResponseAction.IRREVOCABLE: "[bold red]IRREVOCABLE: revoke by hand[/]",
    ResponseAction.PENDING: "[yellow]revocation pending (broker unreachable, retrying)[/]",
    ResponseAction.ALERT_ONLY: "alert only (not a broker credential)",
}


def _when(ts: float | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


def _plain(text: str) -> Text:
    """Caller-influenced text (paths, names, previews) as literal text: never markup, never control
    characters (a path holding ``[`` or an ESC sequence is shown, not interpreted)."""
    return Text(printable(text))


def incident_panel(incident: Incident) -> Panel:
    """The rich rendering, shared with ``jitsec demo``."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    table.add_row("secret", _plain(f"{incident.preview}  (fp {incident.fingerprint[:16]})"))
    table.add_row("rule", _plain(f"{incident.rule_id}  {incident.confidence.value}"))
    table.add_row("action", _ACTIONS[incident.action])
    if incident.lease_id:
        table.add_row("lease", _plain(incident.lease_id))
    if incident.agent or incident.task:
        table.add_row("agent / task", _plain(f"{incident.agent or '?'} / {incident.task or '?'}"))
    if incident.scopes:
        table.add_row("scopes", _plain(", ".join(incident.scopes)))
    if incident.revoked_at is not None:
        table.add_row("revoked at", _when(incident.revoked_at))
    if incident.latency_ms is not None:
        table.add_row("read→revoked", f"{incident.latency_ms:.1f} ms")
    if incident.occurrences == 1:
        table.add_row("seen", f"once, {_when(incident.first_seen)}")
    else:
        table.add_row("seen", f"{incident.occurrences}×  first {_when(incident.first_seen)}  "
                              f"last {_when(incident.last_seen)}")
    for location in incident.locations:
        table.add_row("", _plain(location))
    for partner in incident.related:
        table.add_row("paired with", _plain(partner))
    colour = _COLOURS[incident.severity]
    title = Text.assemble((incident.severity.value.upper(), colour),
                          f" incident {printable(incident.incident_id)} v{incident.version}")
    return Panel(table, title=title, border_style=colour, expand=False)


class ConsoleSink:
    def __init__(self, console: Console | None = None) -> None:
        self.name = "console"
        self._console = console or Console(stderr=True, emoji=False)
        self._lock = threading.Lock()

    def send(self, incident: Incident) -> None:
        with self._lock:
            self._console.print(incident_panel(incident))

    def close(self, timeout: float = 5.0) -> None:
        """Nothing is queued."""
