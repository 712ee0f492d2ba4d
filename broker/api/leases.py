"""Leases: look up, revoke, rotate. An agent acts on its own task's leases; admins on any."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path
from jitsec.broker.api.auth import Caller, require, service_of, task_for
from jitsec.broker.api.schemas import ERROR_RESPONSES, LeaseView, Revoked, Rotated, RotateRequest
from jitsec.broker.api.secrets import issued_body
from jitsec.broker.errors import Forbidden, NotFound
from jitsec.broker.model import Lease, Role
from jitsec.broker.service import BrokerService

from jitsec.kernel.redaction import shown

router = APIRouter(tags=["leases"], responses=ERROR_RESPONSES)
Service = Annotated[BrokerService, Depends(service_of)]
LeaseId = Annotated[str, Path(max_length=64)]


def _check_access(caller: Caller, lease: Lease, service: BrokerService) -> None:
    """An agent acts on its own task's leases, an orchestrator on those of the tasks it started (a
    lease of another's task is an unknown lease to it), an admin on any."""
    if caller.task is not None:
        service.check_owner(caller.task, lease)
    elif caller.role is Role.ORCHESTRATOR:
        try:
            task_for(caller, service, lease.task_id)
        except NotFound:
            raise NotFound(f"no lease {shown(lease.lease_id)!r}") from None
    elif caller.role is not Role.ADMIN:
        raise Forbidden("not allowed to act on this lease", code="wrong_role")


@router.get("/v1/leases/{lease_id}", response_model=LeaseView)
def get_lease(
    lease_id: LeaseId,
    service: Service,
    caller: Annotated[Caller, Depends(require(Role.ADMIN, Role.ORCHESTRATOR, Role.AGENT_TASK_TOKEN))],
) -> LeaseView:
    lease = service.get_lease(lease_id)
    _check_access(caller, lease, service)
    return LeaseView.of(lease)


@router.delete("/v1/leases/{lease_id}", response_model=Revoked)
def revoke(
    lease_id: LeaseId,
    service: Service,
    caller: Annotated[Caller, Depends(require(Role.ADMIN, Role.ORCHESTRATOR, Role.AGENT_TASK_TOKEN))],
) -> Revoked:
    lease = service.get_lease(lease_id)
    _check_access(caller, lease, service)
    result = service.revoke_lease(lease.lease_id, "requested", f"by {caller.role.value}", caller.name)
    return Revoked(lease_id=lease.lease_id, status=result.status.value, state=result.lease.state.value)


@router.post("/v1/leases/{lease_id}/rotate", response_model=Rotated)
def rotate(
    lease_id: LeaseId,
    service: Service,
    caller: Annotated[Caller, Depends(require(Role.AGENT_TASK_TOKEN))],
    body: Annotated[RotateRequest | None, Body()] = None,
) -> Rotated:
    assert caller.task is not None
    wanted = body or RotateRequest()
    rotation = service.rotate(caller.task, lease_id, wanted.grace_seconds, public_key=wanted.public_key or "")
    issued = issued_body(rotation.new)
    return Rotated(
        **issued.model_dump(),
        replaced_lease_id=rotation.old.lease_id,
        replaced_expires_at=rotation.old.expires_at,
        replaced_state=rotation.old.state.value,
    )
