"""How sinks render an incident for people: one summary line. The machine shape is the kernel's
incident codec (``jitsec.kernel.schemas.INCIDENT``), shared by every sink.

An incident holds no plaintext secret by construction (a redacted preview and a keyed fingerprint),
so nothing here redacts: it only renders what it is given.
"""

from __future__ import annotations

from datetime import UTC, datetime

from jitsec.kernel.records import Incident, ResponseAction
from jitsec.kernel.schemas import INCIDENT

SCHEMA = INCIDENT.schema


_ACTION_WORDS = {
    ResponseAction.REVOKED: "revoked",
    ResponseAction.ALREADY_DEAD: "already dead",
    ResponseAction.IRREVOCABLE: "IRREVOCABLE",
    ResponseAction.PENDING: "revocation pending",
    ResponseAction.ALERT_ONLY: "alert only",
}


def _utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def incident_summary(incident: Incident) -> str:
    """One human line (Slack ``text``, syslog MSG, console title). Preview and fingerprint only."""
    what = _ACTION_WORDS[incident.action]
    parts = [
        f"[{incident.severity.value.upper()}] {incident.rule_id} {incident.preview}",
        f"{what}",
    ]
    if incident.lease_id:
        parts.append(f"lease {incident.lease_id}")
    if incident.agent or incident.task:
        parts.append(f"agent {incident.agent or '?'} task {incident.task or '?'}")
    if incident.latency_ms is not None:
        parts.append(f"leak-to-revocation {incident.latency_ms:.0f} ms")
    seen = "once" if incident.occurrences == 1 else f"{incident.occurrences} times"
    where = incident.locations[0] if incident.locations else "?"
    parts.append(f"seen {seen}, first at {where} ({_utc(incident.first_seen)})")
    if incident.related:
        parts.append(f"paired with {incident.related[0]}")
    parts.append(f"fp {incident.fingerprint[:16]}")
    return " · ".join(parts)
