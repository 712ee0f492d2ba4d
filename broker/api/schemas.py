"""Request and response bodies of the API (pydantic), and their conversion from the broker's records.

Requests refuse unknown fields and bound every length, so hostile input stops at the door with a 422.
"""

from __future__ import annotations

from typing import Annotated

from jitsec.broker.model import Lease
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Scope = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:/*\-]{0,127}$")]  # *: pg schema
AgentName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:@\-]{0,127}$")]
Scopes = list[str]
TTL = Field(default=None, ge=1, le=31_536_000, description="seconds; default from policy")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TaskStart(Strict):
    """``task`` must also be printable (no control or format characters): refused with 422 otherwise."""

    agent: AgentName = Field(description="the agent's name (policy matches it)")
    task: str = Field(min_length=1, max_length=200, description="a human name for the task")
    scopes: list[Scope] = Field(min_length=1, max_length=32)
    ttl_seconds: int | None = TTL


class TaskStarted(BaseModel):
    task_id: str
    agent: str
    scopes: Scopes
    grant: str = Field(description="single-use grant: give it to the agent, which redeems it once")
    grant_expires_at: float
    expires_at: float


class TaskView(BaseModel):
    task_id: str
    agent: str
    task: str
    scopes: Scopes
    created_at: float
    expires_at: float
    redeemed_at: float | None
    completed_at: float | None


class Redeemed(BaseModel):
    task_id: str
    token: str = Field(description="the task token (jitt_...): bearer for /v1/secrets; dies with the task")
    expires_at: float
    scopes: Scopes


PUBLIC_KEY = Field(
    default=None,
    max_length=16384,
    description="the agent's own public key or CSR, for engines that certify a key the agent keeps",
)


class SecretRequest(Strict):
    engine: str = Field(min_length=1, max_length=64)
    scopes: list[Scope] = Field(min_length=1, max_length=32)
    ttl_seconds: int | None = TTL
    public_key: str | None = PUBLIC_KEY


class SecretIssued(BaseModel):
    lease_id: str
    secret: str
    expires_at: float
    engine: str
    scopes: Scopes
    username: str | None = None
    details: dict[str, str] = Field(default_factory=dict)


class Completed(BaseModel):
    task_id: str
    completed: bool = Field(description="true if this call ended the task, false if it had ended before")
    revoked: int
    retrying: int
    failed: int


class LeaseView(BaseModel):
    lease_id: str
    task_id: str
    agent: str
    engine: str
    scopes: Scopes
    issued_at: float
    expires_at: float
    state: str
    fingerprint: str
    revoke_reason: str | None
    revoked_at: float | None
    rotated_from: str | None

    @classmethod
    def of(cls, lease: Lease) -> LeaseView:
        return cls(
            lease_id=lease.lease_id,
            task_id=lease.task_id,
            agent=lease.agent,
            engine=lease.engine,
            scopes=list(lease.scopes),
            issued_at=lease.issued_at,
            expires_at=lease.expires_at,
            state=lease.state.value,
            fingerprint=lease.fingerprint,
            revoke_reason=lease.revoke_reason,
            revoked_at=lease.revoked_at,
            rotated_from=lease.rotated_from,
        )


class Revoked(BaseModel):
    lease_id: str
    status: str = Field(description="revoked, already_revoked, retrying or failed")
    state: str


class RotateRequest(Strict):
    grace_seconds: float = Field(default=0, ge=0, le=3600, description="keep the old secret alive this long")
    public_key: str | None = PUBLIC_KEY


class Rotated(SecretIssued):
    replaced_lease_id: str
    replaced_expires_at: float
    replaced_state: str


class IntrospectRequest(Strict):
    token: str = Field(min_length=1, max_length=4096, description="an engine token or a JWT access token")
    resource: str = Field(default="", max_length=200, description="what the token is being used for")


class Introspected(BaseModel):
    active: bool
    agent: str | None = None
    task: str | None = None
    lease_id: str | None = None
    engine: str | None = None
    scopes: Scopes | None = None
    exp: float | None = None
    iat: float | None = None


class QuarantineRequest(Strict):
    reason: str = Field(default="", max_length=500)


class Quarantined(BaseModel):
    agent: str
    tasks_completed: int
    revoked: int
    retrying: int
    failed: int


class ErrorBody(BaseModel):
    error: str = Field(description="a stable machine-readable code")
    detail: str = Field(description="the reason, for humans")


ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in {
        401: "missing, unknown, expired or replayed credential",
        403: "wrong role, someone else's task or lease, or beyond policy",
        404: "unknown task, lease or engine",
        409: "the task ended or the lease is no longer active",
        413: "request body too large",
        422: "malformed or invalid request",
        502: "the engine failed",
        503: "the engine is unavailable; retry",
    }.items()
}
