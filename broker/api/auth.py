"""Who is calling: ``Authorization: Bearer <credential>`` resolved to a ``Caller`` with one role.

The credential's prefix says what it is: ``jitk_`` a principal key (orchestrator, scanner, resource,
admin; matched by SHA-256 against the config), ``jitg_`` a task grant (only the redeem endpoint takes
it), ``jitt_`` a task token (the agent, bound to its task). Anything else, or nothing, is 401; a known
caller of the wrong role is 403. Routers declare their roles with ``Depends(require(Role.X, ...))``:

    @router.post("/v1/leaks")
    def report(body: ..., caller: Annotated[Caller, Depends(require(Role.SCANNER, Role.ADMIN))],
               service: Annotated[BrokerService, Depends(service_of)]) -> ...
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from jitsec.broker.config import Principal, load_config
from jitsec.broker.errors import ConfigError, Forbidden, NotFound, Unauthenticated
from jitsec.broker.model import Role, Task
from jitsec.broker.service import BrokerService, TaskCaller

from jitsec.kernel.credential_format import CredentialKind, sha256_fingerprint
from jitsec.kernel.redaction import shown

log = logging.getLogger("jitsec.broker.auth")

TASK_TOKEN_PREFIX = "jitt_"
MAX_CREDENTIAL_CHARS = 256

bearer = HTTPBearer(auto_error=False, description="A principal key, a task grant or a task token")


@dataclass(frozen=True, slots=True)
class Caller:
    role: Role
    name: str  # principal name, or the agent's name for grants and task tokens
    task: TaskCaller | None = None  # set for AGENT_TASK_TOKEN
    grant: str | None = field(default=None, repr=False)  # set for AGENT_GRANT (the service checks it)

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


class PrincipalKeys:
    """Principal lookup by key hash (constant-time compare on the hit).

    With ``source`` (the config file) the principals are read again when the file changes, checked
    at most every ``RELOAD_SECONDS``: ``jitsec broker principals add|revoke`` takes effect on a
    running broker without a restart. A file that no longer loads keeps the last good set (logged).
    """

    RELOAD_SECONDS = 1.0

    def __init__(self, principals: Sequence[Principal], source: Path | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._by_hash: Mapping[str, Principal] = {p.key_sha256: p for p in principals}
        self._source, self._clock = source, clock
        self._checked_at = clock()
        self._stamp = self._file_stamp()
        self._lock = threading.Lock()

    def _file_stamp(self) -> tuple[int, int] | None:
        if self._source is None:
            return None
        try:
            status = self._source.stat()
        except OSError:
            return None
        return status.st_mtime_ns, status.st_size

    def _maybe_reload(self) -> None:
        if self._source is None or self._clock() - self._checked_at < self.RELOAD_SECONDS:
            return
        with self._lock:
            self._checked_at = self._clock()
            stamp = self._file_stamp()
            if stamp is None or stamp == self._stamp:
                return
            self._stamp = stamp
            try:
                principals = load_config(self._source).principals
            except ConfigError as error:
                log.error("principals not reloaded, keeping the last good set: %s", error)
                return
            self._by_hash = {p.key_sha256: p for p in principals}
            log.warning("principals reloaded from %s: %d principals", self._source, len(principals))

    def holds(self, key_sha256: str, roles: frozenset[Role]) -> bool:
        """True while a principal with this key hash and one of ``roles`` is in the config (a
        console session asks at each request, so revoking the key ends the session)."""
        self._maybe_reload()
        principal = self._by_hash.get(key_sha256)
        return principal is not None and principal.role in roles

    def find(self, key: str) -> Principal | None:
        self._maybe_reload()
        digest = sha256_fingerprint(key)
        principal = self._by_hash.get(digest)
        if principal is not None and hmac.compare_digest(principal.key_sha256, digest):
            return principal
        return None


async def service_of(request: Request) -> BrokerService:
    """The app's service, as a dependency (async: FastAPI would run a plain function in a thread)."""
    return request.app.state.service


def runs_inline(service: BrokerService, engine_name: str | None = None) -> bool:
    """True when a call may run on the event loop: the store answers from local disk
    (``inline_reads``) and the engine, if any, does no network I/O (``blocking_io`` False). Everything
    else goes to the thread pool so a slow database or engine never stalls other requests."""
    if not getattr(service.store, "inline_reads", False):
        return False
    if engine_name is None:
        return True
    engine = service.engines.get(engine_name)
    return engine is not None and not getattr(engine, "blocking_io", True)


async def _authenticate(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Caller:
    if credentials is None or not credentials.credentials:
        raise Unauthenticated(
            "missing bearer credential (Authorization: Bearer ...)", code="missing_credential"
        )
    secret = credentials.credentials.strip()
    if len(secret) > MAX_CREDENTIAL_CHARS:
        raise Unauthenticated("unknown credential", code="invalid_credential")
    if secret.startswith(CredentialKind.PRINCIPAL_KEY.prefix):
        principal = request.app.state.principal_keys.find(secret)
        if principal is not None:
            return Caller(role=principal.role, name=principal.name)
    elif secret.startswith(CredentialKind.TASK_GRANT.prefix):
        return Caller(role=Role.AGENT_GRANT, name="grant", grant=secret)
    elif secret.startswith(TASK_TOKEN_PREFIX):
        service: BrokerService = request.app.state.service
        if runs_inline(service):
            task = service.authenticate_task_token(secret)
        else:
            task = await run_in_threadpool(service.authenticate_task_token, secret)
        return Caller(role=Role.AGENT_TASK_TOKEN, name=task.task.agent, task=task)
    raise Unauthenticated("unknown credential", code="invalid_credential")


def require(*roles: Role) -> Callable[..., Coroutine[Any, Any, Caller]]:
    """A dependency that authenticates the caller and insists on one of ``roles``."""
    allowed = frozenset(roles)

    async def dependency(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
    ) -> Caller:
        caller = await _authenticate(request, credentials)
        if caller.role not in allowed:
            names = ", ".join(sorted(r.value for r in allowed))
            raise Forbidden(f"this endpoint is for: {names} (you are {caller.role.value})", code="wrong_role")
        return caller

    return dependency


def task_for(caller: Caller, service: BrokerService, task_id: str) -> Task:
    """The task, if the caller may act on it: its own for a task token, one it started for an
    orchestrator, any for an admin. An orchestrator asking for another's task gets the same 404 as
    for an unknown one, so a stolen orchestrator key reaches only that orchestrator's tasks and
    learns nothing of the others'."""
    task = service.get_task(task_id)
    if caller.task is not None and caller.task.task.task_id != task.task_id:
        raise Forbidden("a task token acts only on its own task", code="not_your_task")
    if caller.role is Role.ORCHESTRATOR and task.created_by != caller.name:
        raise NotFound(f"no task {shown(task_id)!r}")
    return task
