"""What the console's templates are given: incident records turned into plain strings, filters read
from a query string. Everything a template shows is text that Jinja escapes; nothing here builds HTML.

Times are shown as ISO-8601 UTC. Previews are the redacted ones the incident holds (never a secret);
locations, notes and reasons come from the fleet (a hostile agent can write log lines that become
them) or from analysts, and are shown only as escaped text, with any broker-issued credential in
them (a ``jit…_`` token whose checksum holds) replaced by its redacted preview (``masked``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode

import regex
from jitsec.broker.incidents.model import (
    STATUS_MOVES,
    FleetIncident,
    IncidentAction,
    IncidentDetail,
    IncidentFilters,
    IncidentStatus,
)

from jitsec.kernel.credential_format import is_valid
from jitsec.kernel.records import Severity
from jitsec.kernel.redaction import preview

FILTER_FIELDS = ("status", "severity", "rule", "agent", "source")
MAX_FILTER_CHARS = 200
ACTION_LABELS: Mapping[IncidentAction, str] = {
    IncidentAction.ACK: "Acknowledge",
    IncidentAction.RESOLVE: "Resolve",
    IncidentAction.FALSE_POSITIVE: "False positive",
    IncidentAction.REOPEN: "Reopen",
}


_CREDENTIAL_SHAPE = regex.compile(r"jit[a-z]*_[0-9A-Za-z]{46}")


def masked(text: str) -> str:
    """``text`` with every broker-issued credential in it shown as its redacted preview."""
    if "jit" not in text:
        return text
    return _CREDENTIAL_SHAPE.sub(lambda m: preview(m.group()) if is_valid(m.group()) else m.group(), text)


class BadFilter(ValueError):
    """A filter value the list cannot take (named in the message, never repeated verbatim)."""


@dataclass(frozen=True, slots=True)
class ListQuery:
    """The list page's query: the filters as typed (to fill the form back) and as the desk takes them."""

    values: Mapping[str, str]
    filters: IncidentFilters
    cursor: str | None

    def query_string(self, cursor: str | None = None) -> str:
        """The filters (and ``cursor``) as a query string, for the pager and the live refresh."""
        pairs = [(name, value) for name, value in self.values.items() if value]
        if cursor:
            pairs.append(("cursor", cursor))
        return urlencode(pairs)


def read_query(params: Mapping[str, str]) -> ListQuery:
    values = {name: params.get(name, "")[:MAX_FILTER_CHARS].strip() for name in FILTER_FIELDS}
    try:
        status = (IncidentStatus(values["status"]),) if values["status"] else ()
    except ValueError:
        raise BadFilter("status must be one of " + ", ".join(s.value for s in IncidentStatus)) from None
    try:
        severity = (Severity(values["severity"]),) if values["severity"] else ()
    except ValueError:
        raise BadFilter("severity must be one of " + ", ".join(s.value for s in Severity)) from None
    filters = IncidentFilters(status=status, severity=severity, rule=values["rule"] or None,
                              agent=values["agent"] or None, source=values["source"] or None)
    cursor = params.get("cursor", "").strip() or None
    return ListQuery(values=values, filters=filters, cursor=cursor)


def when(at: float | None) -> str:
    if at is None:
        return ""
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def row(incident: FleetIncident) -> dict[str, str]:
    return {
        "id": incident.incident_id,
        "severity": incident.severity.value,
        "status": incident.status.value,
        "rule": incident.rule_id,
        "preview": masked(incident.preview),
        "agent": incident.agent or "",
        "sightings": str(incident.sightings),
        "first_seen": when(incident.first_seen),
        "last_seen": when(incident.last_seen),
        "assignee": incident.assignee or "",
        "action": incident.action.value,
    }


def actions_for(status: IncidentStatus) -> list[tuple[str, str]]:
    """``(action, label)`` for each status move the incident's status allows, in a stable order."""
    return [(action.value, ACTION_LABELS[action]) for action in ACTION_LABELS
            if status in STATUS_MOVES[action].sources]


def detail(found: IncidentDetail) -> dict[str, object]:
    incident = found.incident
    facts = [
        ("Status", incident.status.value.replace("_", " ")),
        ("Severity", incident.severity.value),
        ("Confidence", incident.confidence.value),
        ("Rule", f"{incident.rule_id}: {incident.description}"),
        ("Preview", masked(incident.preview)),
        ("Fingerprint", f"{incident.fingerprint} (key {incident.key_id})"),
        ("Sightings", str(incident.sightings)),
        ("First seen", when(incident.first_seen)),
        ("Last seen", when(incident.last_seen)),
        ("Broker action", incident.action.value.replace("_", " ")),
        ("Agent", incident.agent or ""),
        ("Lease", incident.lease_id or ""),
        ("Revoked at", when(incident.revoked_at)),
        ("Leak to revocation", f"{incident.latency_ms:.0f} ms" if incident.latency_ms is not None else ""),
        ("Assignee", incident.assignee or "nobody"),
    ]
    if incident.status_by:
        reason = f": {masked(incident.status_reason)}" if incident.status_reason else ""
        facts.append(("Status set", f"by {incident.status_by} at {when(incident.status_at)}{reason}"))
    return {
        "id": incident.incident_id,
        "status": incident.status.value,
        "severity": incident.severity.value,
        "rule": incident.rule_id,
        "facts": [(name, value) for name, value in facts if value],
        "sightings": [
            {"when": when(s.seen_at), "source": s.source, "location": masked(s.location),
             "scanner": f"{s.scanner}@{s.host}", "action": s.action.value}
            for s in found.sightings
        ],
        "timeline": [
            {"when": when(entry.at), "kind": entry.kind.value, "by": entry.by, "text": masked(entry.text)}
            for entry in found.timeline
        ],
        "actions": actions_for(incident.status),
        "assignee": incident.assignee or "",
    }
