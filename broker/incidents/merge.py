"""How a further sighting changes an incident: severity only rises, and the response's outcome never
goes back (a revocation seen once stays; an alert-only sighting never hides a broker outcome)."""

from __future__ import annotations

from dataclasses import dataclass

from jitsec.broker.incidents.model import FleetIncident

from jitsec.kernel.records import ResponseAction, Severity
from jitsec.kernel.sightings import Sighting

SEVERITY_RANK = {Severity.LOW: 0, Severity.MEDIUM: 1, Severity.HIGH: 2, Severity.CRITICAL: 3}


@dataclass(frozen=True, slots=True)
class Response:
    action: ResponseAction
    lease_id: str | None
    agent: str | None
    revoked_at: float | None
    latency_ms: float | None


def stronger(a: Severity, b: Severity) -> Severity:
    return a if SEVERITY_RANK[a] >= SEVERITY_RANK[b] else b


def response_of(incident: FleetIncident) -> Response:
    return Response(incident.action, incident.lease_id, incident.agent, incident.revoked_at,
                    incident.latency_ms)


def merged_response(current: FleetIncident, seen: Sighting) -> Response:
    kept = response_of(current)
    if current.action is ResponseAction.REVOKED:
        return kept
    if seen.action is ResponseAction.ALERT_ONLY and current.action is not ResponseAction.ALERT_ONLY:
        return kept
    revoked = seen.action is ResponseAction.REVOKED
    return Response(
        seen.action,
        seen.lease_id or current.lease_id,
        seen.agent or current.agent,
        seen.revoked_at if revoked else None,
        seen.latency_ms if revoked else None,
    )
