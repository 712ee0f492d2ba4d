"""One JSON shape for an incident, shared by every sink (console, JSONL, webhook, syslog, Kafka, ES).

The shape is the ``Incident`` record's fields, enums as their values, tuples as lists, plus
``schema`` so receivers can evolve. An incident holds no plaintext secret by construction (a redacted
preview and a keyed fingerprint), so nothing here redacts: it only renders what it is given.
"""

from __future__ import annotations

import json
from dataclasses import fields
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from jitsec.kernel.records import BrokerStatus, Confidence, Incident, ResponseAction, Severity

SCHEMA = "jitsec.incident/1"


def incident_to_dict(incident: Incident) -> dict[str, Any]:
    """Plain JSON-ready dict: enums by value, tuples as lists, ``schema`` first."""
    out: dict[str, Any] = {"schema": SCHEMA}
    for spec in fields(incident):
        value = getattr(incident, spec.name)
        if isinstance(value, Enum):
            value = value.value
        elif isinstance(value, tuple):
            value = list(value)
        out[spec.name] = value
    return out


def incident_to_json(incident: Incident) -> str:
    """Compact, key-stable JSON on one line (JSONL, Kafka values, syslog structured payloads)."""
    return json.dumps(incident_to_dict(incident), separators=(",", ":"), ensure_ascii=False)


def incident_from_dict(data: dict[str, Any]) -> Incident:
    """Inverse of ``incident_to_dict``; raises ``ValueError`` naming the bad field."""
    if data.get("schema") != SCHEMA:
        raise ValueError(f"not a {SCHEMA} record (schema={data.get('schema')!r})")
    try:
        return Incident(
            incident_id=str(data["incident_id"]),
            version=int(data["version"]),
            fingerprint=str(data["fingerprint"]),
            rule_id=str(data["rule_id"]),
            description=str(data["description"]),
            severity=Severity(data["severity"]),
            confidence=Confidence(data["confidence"]),
            preview=str(data["preview"]),
            occurrences=int(data["occurrences"]),
            first_seen=float(data["first_seen"]),
            last_seen=float(data["last_seen"]),
            locations=tuple(data["locations"]),
            action=ResponseAction(data["action"]),
            broker=BrokerStatus(data["broker"]) if data.get("broker") else None,
            lease_id=data.get("lease_id"),
            agent=data.get("agent"),
            task=data.get("task"),
            scopes=tuple(data.get("scopes") or ()),
            revoked_at=data.get("revoked_at"),
            latency_ms=data.get("latency_ms"),
            rules_digest=str(data.get("rules_digest", "")),
        )
    except KeyError as missing:
        raise ValueError(f"incident record lacks field {missing.args[0]!r}") from None


def incident_from_json(text: str | bytes) -> Incident:
    return incident_from_dict(json.loads(text))


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
    parts.append(f"fp {incident.fingerprint[:16]}")
    return " · ".join(parts)
