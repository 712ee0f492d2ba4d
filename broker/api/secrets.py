"""Secrets: an agent with a task token asks an engine for a credential."""

from __future__ import annotations

from functools import partial
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool
from jitsec.broker.api.auth import Caller, require, runs_inline, service_of
from jitsec.broker.api.schemas import ERROR_RESPONSES, SecretIssued, SecretRequest
from jitsec.broker.model import Role
from jitsec.broker.service import BrokerService, IssuedSecret

router = APIRouter(tags=["secrets"], responses=ERROR_RESPONSES)


def issued_body(issued: IssuedSecret) -> SecretIssued:
    lease = issued.lease
    return SecretIssued(
        lease_id=lease.lease_id,
        secret=issued.secret,
        expires_at=lease.expires_at,
        engine=lease.engine,
        scopes=list(lease.scopes),
        username=lease.username,
        details=dict(issued.details),
    )


@router.post("/v1/secrets", status_code=201, response_model=SecretIssued)
async def issue_secret(
    body: SecretRequest,
    service: Annotated[BrokerService, Depends(service_of)],
    caller: Annotated[Caller, Depends(require(Role.AGENT_TASK_TOKEN))],
) -> SecretIssued:
    assert caller.task is not None
    public_key = body.public_key or ""
    if runs_inline(service, body.engine):  # the lean path: local store, engine without network I/O
        return issued_body(
            service.issue(caller.task, body.engine, body.scopes, body.ttl_seconds, public_key=public_key)
        )
    issued = await run_in_threadpool(
        partial(service.issue, public_key=public_key), caller.task, body.engine, body.scopes, body.ttl_seconds
    )
    return issued_body(issued)
