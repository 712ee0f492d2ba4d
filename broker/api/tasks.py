"""Tasks: start (orchestrator), redeem the grant (agent), look up, complete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path
from jitsec.broker.api.auth import Caller, require, service_of, task_for
from jitsec.broker.api.schemas import ERROR_RESPONSES, Completed, Redeemed, TaskStart, TaskStarted, TaskView
from jitsec.broker.model import Role
from jitsec.broker.revocation import RevocationStatus
from jitsec.broker.service import BrokerService, Completion

router = APIRouter(tags=["tasks"], responses=ERROR_RESPONSES)
Service = Annotated[BrokerService, Depends(service_of)]
TaskId = Annotated[str, Path(max_length=64)]


def completed_body(done: Completion) -> Completed:
    return Completed(
        task_id=done.task_id,
        completed=done.newly_completed,
        revoked=done.count(RevocationStatus.REVOKED),
        retrying=done.count(RevocationStatus.RETRYING),
        failed=done.count(RevocationStatus.FAILED),
    )


@router.post("/v1/tasks", status_code=201, response_model=TaskStarted)
def start_task(
    body: TaskStart,
    service: Service,
    caller: Annotated[Caller, Depends(require(Role.ORCHESTRATOR, Role.ADMIN))],
) -> TaskStarted:
    started = service.start_task(caller.name, body.agent, body.task, body.scopes, body.ttl_seconds)
    task = started.task
    return TaskStarted(
        task_id=task.task_id,
        agent=task.agent,
        scopes=list(task.scopes),
        grant=started.grant,
        grant_expires_at=task.grant_expires_at,
        expires_at=task.expires_at,
    )


@router.post("/v1/tasks/{task_id}/redeem", response_model=Redeemed)
def redeem(
    task_id: TaskId, service: Service, caller: Annotated[Caller, Depends(require(Role.AGENT_GRANT))]
) -> Redeemed:
    redeemed = service.redeem(task_id, caller.grant or "")
    return Redeemed(
        task_id=redeemed.task.task_id,
        token=redeemed.token,
        expires_at=redeemed.token_lease.expires_at,
        scopes=list(redeemed.task.scopes),
    )


@router.get("/v1/tasks/{task_id}", response_model=TaskView)
def get_task(
    task_id: TaskId,
    service: Service,
    caller: Annotated[Caller, Depends(require(Role.ORCHESTRATOR, Role.ADMIN, Role.AGENT_TASK_TOKEN))],
) -> TaskView:
    task = task_for(caller, service, task_id)
    return TaskView(
        task_id=task.task_id,
        agent=task.agent,
        task=task.name,
        scopes=list(task.scopes),
        created_at=task.created_at,
        expires_at=task.expires_at,
        redeemed_at=task.redeemed_at,
        completed_at=task.completed_at,
    )


@router.post("/v1/tasks/{task_id}/complete", response_model=Completed)
def complete(
    task_id: TaskId,
    service: Service,
    caller: Annotated[Caller, Depends(require(Role.ORCHESTRATOR, Role.ADMIN, Role.AGENT_TASK_TOKEN))],
) -> Completed:
    task = task_for(caller, service, task_id)
    return completed_body(service.complete_task(task.task_id, caller.name))
