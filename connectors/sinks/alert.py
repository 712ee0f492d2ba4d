"""The alert document (``jitsec.alert/2``): what a SIEM, a chat room or a ticket system receives.

An incident version (``jitsec.incident/1``, the book's own record) plus what a receiver needs to act
without asking anyone: times as ISO-8601 UTC strings with milliseconds (``2026-12-07T05:16:30.123Z``),
which scanner on which host saw it, what to do about it (``remediation``), the one-line ``summary``
and, when a console is configured, a link to the incident there. ``schema`` tells formats apart:
``jitsec.alert/2`` keeps every field name of ``jitsec.incident/1`` with the same meaning, only the
four times change from epoch floats to strings.

No secret: the incident holds a redacted preview and a keyed fingerprint, and nothing here adds one.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from jitsec.connectors.sinks.serialize import incident_summary

from jitsec.kernel.records import Incident, ResponseAction
from jitsec.kernel.schemas import INCIDENT

ALERT_SCHEMA = "jitsec.alert/2"
SCANNER_ENV = "JITSEC_SCANNER_NAME"
CONSOLE_ENV = "JITSEC_CONSOLE_URL"

_TIMES = ("first_seen", "last_seen", "revoked_at")
_DEFAULT_REMEDIATION = ("Revoke or rotate this credential where it was issued, then remove it from the "
                        "locations listed and from their history (git history, log retention, backups).")
_ACTION_REMEDIATION = {
    ResponseAction.REVOKED: "The broker already revoked this credential (lease {lease}); nothing is live. "
                            "Remove the line that printed it and find out why it was written.",
    ResponseAction.ALREADY_DEAD: "The broker credential was already expired or revoked; nothing is live. "
                                 "Remove the line that printed it.",
    ResponseAction.PENDING: "The broker is revoking this credential (lease {lease}); a later version of "
                            "this alert says when it is done. Meanwhile treat it as live.",
    ResponseAction.IRREVOCABLE: "The broker could NOT revoke this live credential (lease {lease}): revoke it "
                                "by hand (`jitsec broker revoke` or the engine's own console) now.",
}


def iso_utc(ts: float) -> str:
    """``2026-12-07T05:16:30.123Z``: ISO-8601, UTC, milliseconds."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def default_scanner_name(env: Mapping[str, str] | None = None) -> str:
    """``$JITSEC_SCANNER_NAME``, else ``jitsec@<hostname>``."""
    env = os.environ if env is None else env
    return env.get(SCANNER_ENV) or f"jitsec@{socket.gethostname()}"


@dataclass(frozen=True, slots=True)
class AlertContext:
    """What every alert of one scanner process carries besides the incident. Built once at start.

    ``remediations`` maps rule ids to their text (rule packs' ``remediation``, or a default for the
    rule's family); a rule missing from it gets the generic default."""

    scanner: str = field(default_factory=default_scanner_name)
    host: str = field(default_factory=socket.gethostname)
    console_url: str | None = None
    remediations: Mapping[str, str] = field(default_factory=dict)

    def remediation(self, incident: Incident) -> str:
        """Broker credentials say what the broker did; others the rule's text."""
        action_text = _ACTION_REMEDIATION.get(incident.action)
        if action_text is not None:
            return action_text.format(lease=incident.lease_id or "?")
        return self.remediations.get(incident.rule_id) or _DEFAULT_REMEDIATION

    def incident_link(self, incident: Incident) -> str | None:
        if not self.console_url:
            return None
        return f"{self.console_url.rstrip('/')}/console/incidents/{incident.incident_id}"


def alert_document(incident: Incident, context: AlertContext) -> dict[str, Any]:
    """The ``jitsec.alert/2`` document of one incident version."""
    document = INCIDENT.to_dict(incident)
    document["schema"] = ALERT_SCHEMA
    for name in _TIMES:
        value = document.get(name)
        document[name] = None if value is None else iso_utc(float(value))
    document["scanner"] = {"name": context.scanner, "host": context.host}
    document["remediation"] = context.remediation(incident)
    document["console_url"] = context.incident_link(incident)
    document["summary"] = incident_summary(incident)
    return document
