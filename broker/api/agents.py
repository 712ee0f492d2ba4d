"""Agents: quarantine (revoke everything of an agent and refuse it new tasks) and release."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path
from jitsec.broker.api.auth import Caller, require, service_of
from jitsec.broker.api.schemas import ERROR_RESPONSES, Quarantined, QuarantineRequest
from jitsec.broker.model import Role
from jitsec.broker.revocation import RevocationStatus
from jitsec.broker.service import BrokerService

router = APIRouter(tags=["agents"], responses=ERROR_RESPONSES)
Service = Annotated[BrokerService, Depends(service_of)]
Admin = Annotated[Caller, Depends(require(Role.ADMIN))]
Agent = Annotated[str, Path(max_length=128)]


@router.post("/v1/agents/{agent}/quarantine", response_model=Quarantined)
def quarantine(
    agent: Agent, service: Service, caller: Admin, body: Annotated[QuarantineRequest | None, Body()] = None
) -> Quarantined:
    done = service.quarantine_agent(agent, caller.name, (body or QuarantineRequest()).reason)
    results = [r for completion in done for r in completion.results]
    return Quarantined(
        agent=agent,
        tasks_completed=sum(1 for d in done if d.task_id),
        revoked=sum(1 for r in results if r.status is RevocationStatus.REVOKED),
        retrying=sum(1 for r in results if r.status is RevocationStatus.RETRYING),
        failed=sum(1 for r in results if r.status is RevocationStatus.FAILED),
    )


@router.delete("/v1/agents/{agent}/quarantine", status_code=204)
def release(agent: Agent, service: Service, caller: Admin) -> None:
    service.release_agent(agent, caller.name)
