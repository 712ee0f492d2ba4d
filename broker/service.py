"""The broker's core operations, with no HTTP in them: the API, the CLI and the leak response call these.

Each operation validates everything before it changes anything, so a refused request leaves nothing
half-issued; each state change commits together with its audit record. Leases change state only
through ``broker.lifecycle.LeaseMachine`` (issued here, revoked through the ``Revoker``).

Secrets leave this module only inside ``StartedTask``/``RedeemedTask``/``IssuedSecret`` (whose ``repr``
is redacted) and are never stored, logged or put in an exception message.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from jitsec.broker.engines.base import Engine, IssueRequest
from jitsec.broker.errors import (
    BadRequest,
    BrokerError,
    Conflict,
    Forbidden,
    NotFound,
    PolicyDenied,
    Unauthenticated,
)
from jitsec.broker.incidents.desk import IncidentDesk
from jitsec.broker.lifecycle import PENDING, REVOCABLE, LeaseMachine
from jitsec.broker.metrics import BrokerMetrics
from jitsec.broker.model import TASK_TOKEN_ENGINE, AuditEvent, AuditKind, Lease, LeaseState, Task, new_id
from jitsec.broker.policy import Policy, ReplayAction
from jitsec.broker.revocation import RevocationStatus
from jitsec.broker.revoker import RevocationResult, Revoker
from jitsec.broker.store.base import Store
from jitsec.broker.validation import check_agent, check_scopes, check_task_name, clean_detail

from jitsec.kernel.credential_format import CredentialKind, mint, sha256_fingerprint
from jitsec.kernel.redaction import preview, shown

log = logging.getLogger("jitsec.broker")

MAX_GRACE_SECONDS = 3600
GRANT_REPLAY_REASON = "grant_replay"  # the revocation reason when a replayed grant ends its task


@dataclass(frozen=True, slots=True)
class StartedTask:
    task: Task
    grant: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class RedeemedTask:
    task: Task
    token_lease: Lease
    token: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class IssuedSecret:
    lease: Lease
    secret: str = field(repr=False)
    details: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Rotation:
    new: IssuedSecret
    old: Lease
    old_revoked: bool  # True when grace was 0 and the old lease is revoked already


@dataclass(frozen=True, slots=True)
class Introspection:
    active: bool
    lease: Lease | None = None


@dataclass(frozen=True, slots=True)
class Completion:
    task_id: str
    newly_completed: bool
    results: tuple[RevocationResult, ...] = ()

    def count(self, status: RevocationStatus) -> int:
        return sum(1 for r in self.results if r.status is status)


@dataclass(frozen=True, slots=True)
class TaskCaller:
    """An agent authenticated by its task token."""

    task: Task
    token_lease: Lease


class BrokerService:
    """Composition of store, engines, policy and revoker. Thread-safe (state lives in the store)."""

    def __init__(
        self,
        store: Store,
        engines: Mapping[str, Engine],
        policy: Policy,
        revoker: Revoker,
        *,
        grant_ttl_seconds: int = 300,
        on_grant_replay: ReplayAction = ReplayAction.END_TASK,
        clock: Callable[[], float] = time.time,
        metrics: BrokerMetrics | None = None,
        leases: LeaseMachine | None = None,
        incidents: IncidentDesk | None = None,
    ) -> None:
        self.store, self.engines, self.policy, self.revoker = store, engines, policy, revoker
        self.leases = leases or LeaseMachine(store)
        self.grant_ttl_seconds = grant_ttl_seconds
        self.on_grant_replay = on_grant_replay
        self.clock = clock
        self.metrics = metrics or BrokerMetrics()
        self.incidents = incidents or IncidentDesk(store.incidents, clock=clock, metrics=self.metrics)

    # audit helpers ---------------------------------------------------------------------------------
    def audit(self, event: AuditEvent) -> None:
        """Append one event (e.g. ``leak`` from the leak response)."""
        self.store.append_audit([event])

    def _deny(
        self,
        error: BrokerError,
        *,
        principal: str,
        agent: str = "",
        task_id: str = "",
        engine: str = "",
        scopes: Sequence[str] = (),
    ) -> BrokerError:
        self.metrics.denied.labels(error.code).inc()
        self.audit(
            AuditEvent(
                kind=AuditKind.DENY,
                at=self.clock(),
                principal=principal,
                # refused input, kept forever in the chain: never a secret (shown() redacts the shape);
                # an agent the policy covers is an identity, kept as it is
                agent=agent if self.policy.knows(agent) else shown(agent),
                task_id=shown(task_id),
                engine=shown(engine),
                scopes=tuple(shown(scope) for scope in scopes),
                detail=clean_detail(f"{error.code}: {error.reason}"),
            )
        )
        return error

    # tasks -----------------------------------------------------------------------------------------
    def start_task(
        self, principal: str, agent: str, name: str, scopes: Sequence[str], ttl_seconds: int | None = None
    ) -> StartedTask:
        check_agent(agent)
        check_task_name(name)
        wanted = check_scopes(scopes)
        if ttl_seconds is not None and ttl_seconds <= 0:
            raise BadRequest("ttl_seconds must be positive", code="invalid_ttl")
        try:
            if self.store.is_quarantined(agent):
                raise PolicyDenied(f"agent {shown(agent)!r} is quarantined", code="quarantined")
            ttl = self.policy.task_ttl(agent, wanted, ttl_seconds)
        except PolicyDenied as error:
            raise self._deny(error, principal=principal, agent=agent, scopes=wanted) from None
        now = self.clock()
        grant = mint(CredentialKind.TASK_GRANT)
        task = Task(
            task_id=new_id("tsk"),
            agent=agent,
            name=name,
            scopes=wanted,
            created_at=now,
            expires_at=now + ttl,
            grant_sha256=sha256_fingerprint(grant),
            grant_expires_at=now + min(self.grant_ttl_seconds, ttl),
            created_by=principal,
        )
        self.store.create_task(
            task,
            AuditEvent(
                kind=AuditKind.TASK_START,
                at=now,
                principal=principal,
                agent=agent,
                task_id=task.task_id,
                scopes=wanted,
                detail=clean_detail(f"task={name}; ttl={ttl}"),
            ),
        )
        return StartedTask(task=task, grant=grant)

    def get_task(self, task_id: str) -> Task:
        task = self.store.get_task(task_id)
        if task is None:
            raise NotFound(f"no task {shown(task_id)!r}")
        return task

    def redeem(self, task_id: str, grant: str) -> RedeemedTask:
        """Exchange the single-use grant for the task token. A second presentation is a ``replay``
        (see ``_replay``), whether it comes after the first or loses a race with it in the store."""
        task = self.store.get_task(task_id)
        if task is None or not hmac.compare_digest(task.grant_sha256, sha256_fingerprint(grant)):
            raise Unauthenticated("invalid grant for this task", code="invalid_grant")
        now = self.clock()
        if task.redeemed_at is not None:
            raise self._replay(task, now)
        if now >= task.grant_expires_at or not task.is_open(now):
            raise self._deny(
                Unauthenticated("grant expired or task ended", code="grant_expired"),
                principal=task.agent,
                agent=task.agent,
                task_id=task.task_id,
            )
        token = mint(CredentialKind.TASK_TOKEN)
        lease = Lease(
            lease_id=new_id("lse"),
            task_id=task.task_id,
            agent=task.agent,
            engine=TASK_TOKEN_ENGINE,
            scopes=task.scopes,
            issued_at=now,
            expires_at=task.expires_at,
            fingerprint=sha256_fingerprint(token),
        )
        event = AuditEvent(
            kind=AuditKind.REDEEM,
            at=now,
            principal=task.agent,
            agent=task.agent,
            task_id=task.task_id,
            lease_id=lease.lease_id,
            engine=TASK_TOKEN_ENGINE,
            scopes=task.scopes,
        )
        if not self.leases.redeem(task.task_id, now, lease, event):
            raise self._replay(task, now)
        return RedeemedTask(task=task, token_lease=lease, token=token)

    def _replay(self, task: Task, now: float) -> BrokerError:
        """Audit a replayed grant and, under ``end-task``, end its task before refusing.

        Two presentations of one grant mean it left the agent, and which presenter is the thief is
        unknown: when the thief redeemed first, this refusal reaches the legitimate agent. So, as RFC
        6749 §4.1.2 asks of authorization codes, every lease of the task is revoked (the task token the
        first redemption returned included), through ``complete_task``. Idempotent: a replay on a task
        already ended revokes nothing new and is still audited. A store error propagates (a 500, no
        token); an engine failure leaves the lease retrying and alerting, like any revocation.
        """
        self.metrics.replays.inc()
        ending = self.on_grant_replay is ReplayAction.END_TASK
        self.audit(
            AuditEvent(
                kind=AuditKind.REPLAY,
                at=now,
                principal=task.agent,
                agent=task.agent,
                task_id=task.task_id,
                scopes=task.scopes,
                detail=f"grant presented again; on_grant_replay={self.on_grant_replay.value}",
            )
        )
        if not ending:
            return Unauthenticated("grant already redeemed", code="grant_replayed")
        done = self.complete_task(task.task_id, task.agent, GRANT_REPLAY_REASON)
        if done.newly_completed:
            self.metrics.replay_tasks_ended.inc()
        log.warning(
            "grant of task %s (agent %s) presented again: task %s, %d lease(s) revoked now",
            task.task_id,
            task.agent,
            "ended" if done.newly_completed else "already ended",
            done.count(RevocationStatus.REVOKED),
        )
        return Unauthenticated(
            "grant already redeemed: the task has been ended and its credentials revoked",
            code="grant_replayed",
        )

    def authenticate_task_token(self, token: str) -> TaskCaller:
        """The task behind a task token, if the token is live and its task still open."""
        lease = self.store.lease_by_fingerprint(sha256_fingerprint(token))
        now = self.clock()
        if lease is None or not lease.is_task_token or not lease.is_live(now):
            raise Unauthenticated("task token unknown, revoked or expired", code="invalid_token")
        task = self.store.get_task(lease.task_id)
        if task is None or not task.is_open(now):
            raise Unauthenticated("the task has ended", code="task_ended")
        return TaskCaller(task=task, token_lease=lease)

    def complete_task(self, task_id: str, principal: str, reason: str = "task_complete") -> Completion:
        """End the task and revoke every lease it holds (task token included). Idempotent."""
        task = self.get_task(task_id)
        now = self.clock()
        newly = self.store.complete_task(
            task.task_id,
            now,
            AuditEvent(
                kind=AuditKind.TASK_COMPLETE,
                at=now,
                principal=principal,
                agent=task.agent,
                task_id=task.task_id,
                scopes=task.scopes,
                detail=reason,
            ),
        )
        # completing again finishes what is unfinished: revocations already pending before this call
        # (a crash in flight, a retry waiting for its time) are attempted now, once
        unfinished = self.store.leases_of_task(task.task_id, PENDING)
        live = [lease.lease_id for lease in self.store.leases_of_task(task.task_id, REVOCABLE)]
        results = self.revoker.revoke_ids(live, reason, "", principal)
        if unfinished:
            results = [*results, *self.revoker.attempt(unfinished, principal)]
        return Completion(task_id=task.task_id, newly_completed=newly, results=tuple(results))

    # secrets ---------------------------------------------------------------------------------------
    def engine(self, name: str) -> Engine:
        engine = self.engines.get(name)
        if engine is None or name == TASK_TOKEN_ENGINE:
            raise NotFound(
                f"unknown engine {shown(name)!r} (configured: {', '.join(sorted(self.engines))})",
                code="unknown_engine",
            )
        return engine

    def issue(
        self,
        caller: TaskCaller,
        engine_name: str,
        scopes: Sequence[str],
        ttl_seconds: int | None = None,
        *,
        rotated_from: str | None = None,
        public_key: str = "",
    ) -> IssuedSecret:
        task = caller.task
        engine = self.engine(engine_name)
        wanted = check_scopes(scopes)
        engine.validate_scopes(wanted)
        if ttl_seconds is not None and ttl_seconds <= 0:
            raise BadRequest("ttl_seconds must be positive", code="invalid_ttl")
        try:
            outside = [s for s in wanted if s not in task.scopes]
            if outside:
                raise PolicyDenied(
                    f"scope {shown(outside[0])!r} is not among the task's scopes", code="scope_denied"
                )
            ttl = self.policy.secret_ttl(task.agent, engine_name, engine.limits, wanted, ttl_seconds)
        except PolicyDenied as error:
            raise self._deny(
                error,
                principal=task.agent,
                agent=task.agent,
                task_id=task.task_id,
                engine=engine_name,
                scopes=wanted,
            ) from None
        now = self.clock()
        expires_at = min(now + ttl, task.expires_at)
        lease_id = new_id("lse")
        credential = engine.issue(
            IssueRequest(
                lease_id=lease_id,
                agent=task.agent,
                task_id=task.task_id,
                task_name=task.name,
                scopes=wanted,
                ttl_seconds=max(1, int(expires_at - now)),
                expires_at=expires_at,
                public_key=public_key,
            )
        )
        lease = Lease(
            lease_id=lease_id,
            task_id=task.task_id,
            agent=task.agent,
            engine=engine_name,
            scopes=wanted,
            issued_at=now,
            expires_at=expires_at,
            fingerprint=sha256_fingerprint(credential.secret),
            handle=credential.handle,
            rotated_from=rotated_from,
            username=credential.username,
        )
        kind = AuditKind.ROTATE if rotated_from else AuditKind.ISSUE
        detail = f"replaces {rotated_from}" if rotated_from else ""
        try:
            self.leases.issue(
                lease,
                AuditEvent(
                    kind=kind,
                    at=now,
                    principal=task.agent,
                    agent=task.agent,
                    task_id=task.task_id,
                    lease_id=lease_id,
                    engine=engine_name,
                    scopes=wanted,
                    detail=detail,
                ),
            )
        except Exception:
            self._undo_issue(engine, lease)
            raise
        current = self.store.get_task(task.task_id)
        if current is None or current.completed_at is not None:  # completion raced with this issue
            self.revoker.revoke_ids(
                [lease_id], "task_complete", "issued while the task completed", task.agent
            )
            raise Conflict("the task completed while the secret was issued", code="task_ended")
        self.metrics.issued.labels(engine_name).inc()
        log.debug("issued lease %s (%s) to %s", lease_id, preview(credential.secret), task.agent)
        return IssuedSecret(lease=lease, secret=credential.secret, details=dict(credential.details))

    def _undo_issue(self, engine: Engine, lease: Lease) -> None:
        try:
            engine.revoke(lease.handle)
        except Exception as error:  # the engine's own expiry still holds; say so loudly
            log.error(
                "could not undo issue of lease %s after a store failure: %s",
                lease.lease_id,
                type(error).__name__,
            )

    # leases ----------------------------------------------------------------------------------------
    def get_lease(self, lease_id: str) -> Lease:
        lease = self.store.get_lease(lease_id)
        if lease is None:
            raise NotFound(f"no lease {shown(lease_id)!r}")
        return lease

    def lease_by_fingerprint(self, sha256: str) -> Lease | None:
        """The lease whose secret has this hex SHA-256 (any state), for the leak response."""
        return self.store.lease_by_fingerprint(sha256.lower())

    def revoke_lease(
        self, lease_id: str, reason: str, detail: str = "", principal: str = ""
    ) -> RevocationResult:
        """Revoke one lease now. Idempotent: a lease no longer active reports ``ALREADY_REVOKED``
        (or its terminal/retrying state) without touching the engine again."""
        lease = self.get_lease(lease_id)
        results = self.revoker.revoke_ids(
            [lease.lease_id], clean_detail(reason), clean_detail(detail), principal
        )
        if results:
            return results[0]
        current = self.get_lease(lease_id)
        status = {
            LeaseState.FAILED: RevocationStatus.FAILED,
            LeaseState.REVOKING: RevocationStatus.RETRYING,
        }.get(current.state, RevocationStatus.ALREADY_REVOKED)
        return RevocationResult(lease=current, status=status)

    def check_owner(self, caller: TaskCaller, lease: Lease) -> None:
        if lease.task_id != caller.task.task_id:
            raise Forbidden("this lease belongs to another task", code="not_your_lease")

    def rotate(
        self, caller: TaskCaller, lease_id: str, grace_seconds: float = 0, *, public_key: str = ""
    ) -> Rotation:
        """Issue a replacement with the same engine and scopes; revoke the old one now or after the grace.
        Engines that certify an agent's key take the new key in ``public_key``."""
        if not 0 <= grace_seconds <= MAX_GRACE_SECONDS:
            raise BadRequest(f"grace_seconds must be between 0 and {MAX_GRACE_SECONDS}", code="invalid_grace")
        old = self.get_lease(lease_id)
        self.check_owner(caller, old)
        now = self.clock()
        if old.is_task_token or not old.is_live(now):
            raise Conflict("only a live secret lease can be rotated", code="lease_not_active")
        engine = self.engine(old.engine)
        ttl = max(1, int(old.expires_at - old.issued_at))
        engine_policy = self.policy.for_agent(old.agent).engines.get(old.engine)
        if engine_policy is not None:  # policy may have lowered the maximum since: cap, do not refuse
            ttl = min(ttl, engine_policy.ttl_bounds(engine.limits)[1])
        new = self.issue(
            caller, old.engine, old.scopes, ttl, rotated_from=old.lease_id, public_key=public_key
        )
        if grace_seconds == 0:
            self.revoker.revoke_ids([old.lease_id], "rotated", f"replaced by {new.lease.lease_id}", old.agent)
            return Rotation(new=new, old=self.get_lease(old.lease_id), old_revoked=True)
        self.store.shorten_expiry(
            old.lease_id,
            now + grace_seconds,
            AuditEvent(
                kind=AuditKind.ROTATE,
                at=now,
                principal=old.agent,
                agent=old.agent,
                task_id=old.task_id,
                lease_id=old.lease_id,
                engine=old.engine,
                scopes=old.scopes,
                detail=f"replaced by {new.lease.lease_id}; grace={grace_seconds:g}s",
            ),
        )
        return Rotation(new=new, old=self.get_lease(old.lease_id), old_revoked=False)

    def introspect(self, token: str, principal: str, resource: str = "") -> Introspection:
        """RFC 7662 style: active only for a live secret lease of an open task. Records a ``use``."""
        lease = self.store.lease_by_fingerprint(sha256_fingerprint(token))
        if lease is None:
            self.metrics.introspections.labels("false").inc()
            return Introspection(active=False)
        now = self.clock()
        active = not lease.is_task_token and lease.is_live(now)
        self.audit(
            AuditEvent(
                kind=AuditKind.USE,
                at=now,
                principal=principal,
                agent=lease.agent,
                task_id=lease.task_id,
                lease_id=lease.lease_id,
                engine=lease.engine,
                scopes=lease.scopes,
                resource=clean_detail(resource or principal),
                detail=f"active={str(active).lower()}",
            )
        )
        self.metrics.introspections.labels(str(active).lower()).inc()
        return Introspection(active=active, lease=lease if active else None)

    # agents ----------------------------------------------------------------------------------------
    def quarantine_agent(self, agent: str, principal: str, detail: str = "") -> list[Completion]:
        """Block new tasks for the agent, end its open tasks and revoke every lease it holds."""
        check_agent(agent)
        now = self.clock()
        self.store.set_quarantined(
            agent,
            True,
            AuditEvent(
                kind=AuditKind.QUARANTINE,
                at=now,
                principal=principal,
                agent=agent,
                detail=clean_detail(detail),
            ),
        )
        done = [
            self.complete_task(task.task_id, principal, "quarantine")
            for task in self.store.open_tasks_of_agent(agent, now)
        ]
        stragglers = [lease.lease_id for lease in self.store.leases_of_agent(agent, REVOCABLE)]
        if stragglers:
            results = self.revoker.revoke_ids(stragglers, "quarantine", clean_detail(detail), principal)
            done.append(Completion(task_id="", newly_completed=False, results=tuple(results)))
        return done

    def release_agent(self, agent: str, principal: str) -> None:
        check_agent(agent)
        self.store.set_quarantined(
            agent,
            False,
            AuditEvent(kind=AuditKind.RELEASE, at=self.clock(), principal=principal, agent=agent),
        )
