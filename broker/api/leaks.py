"""HTTP routes of the leak response: ``POST /v1/leaks`` and ``GET /v1/fingerprints`` (scanner role).

Thin: validation by the pydantic models (422 with the field on bad input), the work in
``broker.leak_desk.LeakDesk``. Admins may call both too (incident response by hand).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from jitsec.broker.api.auth import Caller, require, service_of
from jitsec.broker.leak_budget import RevocationBudget
from jitsec.broker.leak_desk import LeakDesk
from jitsec.broker.leaks import (
    DEFAULT_PAGE,
    MAX_BATCH,
    MAX_LOCATION_CHARS,
    MAX_PAGE,
    LeakReport,
    LeakScope,
    LeakSettings,
)
from jitsec.broker.model import Role
from jitsec.broker.service import BrokerService
from pydantic import BaseModel, Field

router = APIRouter(tags=["leaks"])
Scanner = Annotated[Caller, Depends(require(Role.SCANNER, Role.ADMIN))]
Service = Annotated[BrokerService, Depends(service_of)]


class LeakItem(BaseModel):
    fingerprint: str = Field(
        pattern=r"^[0-9a-f]{64}$", description="hex SHA-256 of the candidate secret (never the secret)"
    )
    location: str = Field("", max_length=MAX_LOCATION_CHARS, description="where it was seen")
    rule_id: str = Field("", max_length=128)
    seen_at: float | None = Field(None, description="UNIX time the scanner read the bytes")


class LeaksRequest(BaseModel):
    leaks: list[LeakItem] = Field(min_length=1, max_length=MAX_BATCH)
    on_leak: Literal["lease", "task", "agent"] | None = Field(
        None,
        description="revoke the leaked lease only, its whole task, or every lease of the agent "
        "(quarantine); the broker's [leaks] on_leak is the default and the most a scanner may ask "
        "for (only an admin may widen it)",
    )


class LeakResult(BaseModel):
    fingerprint: str
    status: Literal["revoked", "pending", "failed", "dead", "unknown", "refused"]
    lease_id: str | None = None
    agent: str | None = None
    task_id: str | None = None
    engine: str | None = None
    scopes: list[str] = []
    revoked_at: float | None = None
    also_revoked: list[str] = []


class LeaksResponse(BaseModel):
    results: list[LeakResult]


class FingerprintItem(BaseModel):
    lookup: str = Field(description="hash of the live secret's SHA-256 (never the SHA-256 a report carries)")
    expires_at: float


class FingerprintsResponse(BaseModel):
    fingerprints: list[FingerprintItem]
    next_cursor: str | None


def _desk(request: Request, service: BrokerService) -> LeakDesk:
    state = request.app.state
    settings = getattr(state, "leak_settings", None)
    if not isinstance(settings, LeakSettings):  # else the broker config's [leaks] table
        broker = getattr(state, "broker", None)
        settings = getattr(getattr(broker, "config", None), "leaks", None)
    settings = settings if isinstance(settings, LeakSettings) else LeakSettings()
    budget = getattr(state, "leak_budget", None)
    if not isinstance(budget, RevocationBudget):  # one per app: it outlives requests
        budget = state.leak_budget = RevocationBudget(settings.budget, settings.budget_window_seconds)
    return LeakDesk(service, settings, budget)


@router.post("/v1/leaks", response_model=LeaksResponse)
def report_leaks(body: LeaksRequest, caller: Scanner, service: Service, request: Request) -> LeaksResponse:
    """Report fingerprints seen in logs, files or repositories; live leases are revoked at once."""
    reports = [LeakReport(i.fingerprint, i.location, i.rule_id, i.seen_at) for i in body.leaks]
    scope = LeakScope(body.on_leak) if body.on_leak else None
    verdicts = _desk(request, service).report(caller.name, reports, scope, admin=caller.is_admin)
    return LeaksResponse(results=[LeakResult(**v.to_json()) for v in verdicts])


@router.get("/v1/fingerprints", response_model=FingerprintsResponse)
def live_fingerprints(
    caller: Scanner,
    service: Service,
    request: Request,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
) -> FingerprintsResponse:
    """Lookups of live leases (``live_lookup`` of their fingerprints: enough to recognise a secret one
    has found, not to report it), a page at a time; follow ``next_cursor`` until it is null."""
    page = _desk(request, service).fingerprints(cursor, limit)
    return FingerprintsResponse(**page.to_json())
