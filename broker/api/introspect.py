"""Introspection (RFC 7662 style): resource servers ask whether a token is live; each call is a ``use``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from jitsec.broker.api.auth import Caller, require, service_of
from jitsec.broker.api.schemas import ERROR_RESPONSES, Introspected, IntrospectRequest
from jitsec.broker.model import Role
from jitsec.broker.service import BrokerService

router = APIRouter(tags=["introspection"], responses=ERROR_RESPONSES)


@router.post("/v1/introspect", response_model=Introspected, response_model_exclude_none=True)
def introspect(
    body: IntrospectRequest,
    service: Annotated[BrokerService, Depends(service_of)],
    caller: Annotated[Caller, Depends(require(Role.RESOURCE, Role.ADMIN))],
) -> Introspected:
    result = service.introspect(body.token, caller.name, body.resource)
    lease = result.lease
    if not result.active or lease is None:
        return Introspected(active=False)
    return Introspected(
        active=True,
        agent=lease.agent,
        task=lease.task_id,
        lease_id=lease.lease_id,
        engine=lease.engine,
        scopes=list(lease.scopes),
        exp=lease.expires_at,
        iat=lease.issued_at,
    )
