"""HTTP routes of the fleet's incidents: scanners send sightings, analysts work the incidents.

``POST /v1/incidents`` (scanner; batched, idempotent per sighting id), ``GET /v1/fingerprint-key``
(scanner: the fleet's fingerprint key), ``GET /v1/incidents`` and ``GET /v1/incidents/{id}``
(analyst), ``POST /v1/incidents/{id}/ack|resolve|reopen|false_positive|assign|note`` (analyst).
Admins may call all of them. Thin: validation by the pydantic models (422 naming the field), the
work in ``broker.incidents.desk.IncidentDesk``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from jitsec.broker.api.auth import Caller, require, service_of
from jitsec.broker.errors import NotFound
from jitsec.broker.incidents.desk import DEFAULT_LIMIT, MAX_BATCH, MAX_LIMIT, MAX_NOTE_CHARS
from jitsec.broker.incidents.model import IncidentAction, IncidentFilters, IncidentStatus
from jitsec.broker.incidents.records import clean
from jitsec.broker.incidents.wire import FLEET_INCIDENT, INCIDENT_DETAIL, INGEST_OUTCOME
from jitsec.broker.model import Role
from jitsec.broker.service import BrokerService
from pydantic import BaseModel, ConfigDict, Field

from jitsec.kernel.records import Confidence, ResponseAction, Severity
from jitsec.kernel.redaction import looks_like_credential, preview
from jitsec.kernel.sightings import Sighting, key_id_of

router = APIRouter(tags=["incidents"])
Scanner = Annotated[Caller, Depends(require(Role.SCANNER, Role.ADMIN))]
Analyst = Annotated[Caller, Depends(require(Role.ANALYST, Role.ADMIN))]
Service = Annotated[BrokerService, Depends(service_of)]
IncidentId = Annotated[str, Path(max_length=64, pattern=r"^inc_[0-9a-f]{8,64}$")]
Name = Annotated[str, Field(max_length=128)]


class SightingItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sighting_id: str = Field(pattern=r"^sgt_[0-9a-f]{32}$", description="derived from what it describes")
    fingerprint: str = Field(pattern=r"^hmac-sha256:[0-9a-f]{64}$",
                             description="keyed fingerprint under the fleet key (never the secret)")
    key_id: str = Field("", pattern=r"^[0-9a-f]{0,64}$", description="names the key of the fingerprint")
    rule_id: Name
    description: str = Field("", max_length=512)
    severity: Literal["low", "medium", "high", "critical"]
    confidence: Literal["confirmed", "structural", "heuristic"]
    preview: str = Field(max_length=96, description="redacted preview (as the scanner's reports show)")
    location: str = Field(max_length=1024)
    source: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")
    seen_at: float = Field(description="UNIX time the scanner read the bytes")
    scanner: Name
    host: str = Field(max_length=255)
    action: Literal["revoked", "already_dead", "irrevocable", "pending", "alert_only"] = "alert_only"
    lease_id: str | None = Field(None, max_length=64)
    agent: str | None = Field(None, max_length=128)
    revoked_at: float | None = None
    latency_ms: float | None = None

    def sighting(self) -> Sighting:
        shown = preview(self.preview) if looks_like_credential(self.preview) else self.preview
        return Sighting(
            self.sighting_id, self.fingerprint, self.key_id, clean(self.rule_id), clean(self.description),
            Severity(self.severity), Confidence(self.confidence), clean(shown), clean(self.location),
            self.source, self.seen_at, clean(self.scanner), clean(self.host), ResponseAction(self.action),
            self.lease_id, self.agent, self.revoked_at, self.latency_ms,
        )


class SightingsRequest(BaseModel):
    sightings: list[SightingItem] = Field(min_length=1, max_length=MAX_BATCH)


class SightingOutcome(BaseModel):
    sighting_id: str
    incident_id: str
    opened: bool = Field(description="this sighting opened the incident")
    counted: bool = Field(description="false when the broker had this sighting already")


class SightingsResponse(BaseModel):
    results: list[SightingOutcome]


class FleetKey(BaseModel):
    key: str = Field(description="hex; set as JITSEC_FINGERPRINT_KEY so every scanner fingerprints alike")
    key_id: str


class IncidentView(BaseModel):
    incident_id: str
    seq: int
    fingerprint: str
    key_id: str
    rule_id: str
    description: str
    severity: str
    confidence: str
    preview: str
    status: Literal["open", "acknowledged", "resolved", "false_positive"]
    first_seen: float
    last_seen: float
    sightings: int
    action: str
    lease_id: str | None
    agent: str | None
    revoked_at: float | None
    latency_ms: float | None
    assignee: str | None
    status_by: str | None
    status_at: float | None
    status_reason: str | None
    created_at: float
    updated_at: float


class IncidentList(BaseModel):
    incidents: list[IncidentView]
    next_cursor: str | None


class SightingView(BaseModel):
    sighting_id: str
    incident_id: str
    location: str
    source: str
    seen_at: float
    scanner: str
    host: str
    reported_by: str
    received_at: float
    action: str


class TimelineView(BaseModel):
    at: float
    kind: Literal["opened", "seen", "revoked", "status", "assigned", "note"]
    by: str
    text: str


class IncidentDetailView(BaseModel):
    incident: IncidentView
    sightings: list[SightingView]
    timeline: list[TimelineView]


class Reason(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field("", max_length=MAX_NOTE_CHARS)


class Assignment(BaseModel):
    model_config = ConfigDict(extra="forbid")
    assignee: str | None = Field(None, max_length=128, description="null or empty: nobody")


class Note(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=MAX_NOTE_CHARS)


def _view(incident: Any) -> IncidentView:
    return IncidentView(**FLEET_INCIDENT.to_dict(incident))


@router.post("/v1/incidents", response_model=SightingsResponse)
def report_sightings(body: SightingsRequest, caller: Scanner, service: Service) -> SightingsResponse:
    """Send a batch of sightings; each joins the one incident of its fingerprint (opened if new).
    Sending a sighting again changes nothing (``counted`` false): retry freely."""
    outcomes = service.incidents.ingest([item.sighting() for item in body.sightings], caller.name)
    return SightingsResponse(results=[SightingOutcome(**INGEST_OUTCOME.to_dict(o)) for o in outcomes])


@router.get("/v1/fingerprint-key", response_model=FleetKey)
def fingerprint_key(caller: Scanner, service: Service) -> FleetKey:
    """The fleet's fingerprint key, for scanners: one secret gets one fingerprint on every machine."""
    key = service.incidents.fleet_key()
    return FleetKey(key=key.hex(), key_id=key_id_of(key))


@router.get("/v1/incidents", response_model=IncidentList)
def list_incidents(
    *,
    caller: Analyst,
    service: Service,
    status: Annotated[list[Literal["open", "acknowledged", "resolved", "false_positive"]] | None,
                      Query(description="repeat for several")] = None,
    severity: Annotated[list[Literal["low", "medium", "high", "critical"]] | None, Query()] = None,
    rule: Annotated[str | None, Query(max_length=128)] = None,
    agent: Annotated[str | None, Query(max_length=128)] = None,
    source: Annotated[str | None, Query(max_length=32, description="file, git, kafka, elasticsearch")] = None,
    assignee: Annotated[str | None, Query(max_length=128)] = None,
    since: Annotated[float | None, Query(description="last seen at or after (UNIX seconds)")] = None,
    cursor: Annotated[str | None, Query(max_length=20)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> IncidentList:
    """Incidents newest first, filtered; follow ``next_cursor`` until it is null."""
    filters = IncidentFilters(
        status=tuple(IncidentStatus(s) for s in status or ()),
        severity=tuple(Severity(s) for s in severity or ()),
        rule=rule, agent=agent, source=source, since=since, assignee=assignee,
    )
    page = service.incidents.list(filters, cursor, limit)
    return IncidentList(incidents=[_view(i) for i in page.items], next_cursor=page.next_cursor)


@router.get("/v1/incidents/{incident_id}", response_model=IncidentDetailView)
def get_incident(incident_id: IncidentId, caller: Analyst, service: Service) -> IncidentDetailView:
    """One incident with its sightings and its timeline (oldest first)."""
    detail = service.incidents.get(incident_id)
    if detail is None:
        raise NotFound(f"no incident {incident_id!r}", code="unknown_incident")
    return IncidentDetailView(**INCIDENT_DETAIL.to_dict(detail))


def _status_route(action: IncidentAction) -> None:
    def change(incident_id: IncidentId, caller: Analyst, service: Service,
               body: Reason | None = None) -> IncidentView:
        reason = body.reason if body is not None else ""
        return _view(service.incidents.act(incident_id, action, caller.name, reason))

    change.__name__ = f"{action.value}_incident"
    change.__doc__ = (f"{action.value.replace('_', ' ').capitalize()} the incident (409 when its status "
                      "does not allow it); the reason is kept with who and when.")
    router.post(f"/v1/incidents/{{incident_id}}/{action.value}", response_model=IncidentView)(change)


for _action in IncidentAction:
    _status_route(_action)


@router.post("/v1/incidents/{incident_id}/assign", response_model=IncidentView)
def assign_incident(incident_id: IncidentId, body: Assignment, caller: Analyst,
                    service: Service) -> IncidentView:
    """Give the incident to someone (``null``: to nobody)."""
    return _view(service.incidents.assign(incident_id, body.assignee, caller.name))


@router.post("/v1/incidents/{incident_id}/note", response_model=IncidentView)
def note_incident(incident_id: IncidentId, body: Note, caller: Analyst, service: Service) -> IncidentView:
    """Add a note to the incident's timeline."""
    return _view(service.incidents.note(incident_id, body.text, caller.name))
