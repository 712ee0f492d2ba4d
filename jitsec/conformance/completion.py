"""Test 8.2, task-completion revocation (requirement 4.3): when the agent completes its task, every
secret of the task is dead at once, long before its TTL, and an open database session is ended.

The agent holds two tokens (and, with ``--postgres``, a database role with an open session; when the
deployment's policy offers the jwt engine to the suite's agents, a JWT access token; with ``--x509``,
``--ssh`` and ``--kafka``, a client certificate, an SSH certificate and a Kafka SCRAM user), all with
TTLs of minutes. It completes the task through the SDK; from the moment the broker answers, the suite
checks each credential at its resource, with no allowance beyond ``--immediate`` seconds (a Kafka
login: ``KAFKA_LIMIT`` at least, the time a deleted SCRAM credential takes to reach every broker).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass

from jitsec.broker.client import AgentTask, BrokerAPIError
from jitsec.conformance.context import Context, Issued, Recorder
from jitsec.conformance.engine_probes import KafkaLogin, krl_listing, ssh_certificate_probe
from jitsec.conformance.policy import KAFKA_SCOPE, SSH_SCOPE, X509_SCOPE
from jitsec.conformance.resources import (
    GRANTED_TABLE,
    Probe,
    certificate_probe,
    session_alive,
    task_token_probe,
    token_probe,
    wait_for,
)

TEST_ID = "8.2"
TITLE = "Task-completion revocation"
REQUIREMENT = "4.3"
LONG_TTL = 300
KAFKA_LIMIT = 5.0


@dataclass(frozen=True, slots=True)
class Held:
    """A credential checked at a resource of its own after completion: its lease, the check's name,
    a probe (works until shown dead) and how long it may take to die."""

    lease_id: str
    check: str
    probe: Callable[[], Probe]
    limit: float


def _dead_within(probe: Callable[[], Probe], limit: float) -> tuple[bool, float | None, str]:
    """Whether ``probe`` reports the credential dead within ``limit`` seconds, when, and why."""
    start = time.monotonic()
    last: list[Probe] = []

    def dead() -> bool:
        last[:] = [probe()]
        return not last[0].works

    held = wait_for(dead, timeout=limit, interval=0.01)
    measured = None if held is None else held - start
    return held is not None, measured, last[0].reason if last else ""


def _serial_of(pem: str) -> int:
    from cryptography import x509  # noqa: PLC0415 - only with --x509 (the broker extra has it)

    return int(x509.load_pem_x509_certificate(pem.encode("ascii")).serial_number)


def _jwt_if_offered(ctx: Context, rec: Recorder, task: AgentTask) -> list[Issued]:
    """A JWT access token (introspected like a token) when the policy offers the jwt engine."""
    try:
        return [ctx.secret(task, "jwt", [ctx.READ], LONG_TTL)]
    except BrokerAPIError as error:
        if error.code not in {"unknown_engine", "engine_denied"}:
            raise
    rec.note("no jwt engine for the suite's agents: JWT access tokens not tested")
    return []


def _ssh_if_asked(ctx: Context, rec: Recorder, task: AgentTask) -> list[Held]:
    """With ``--ssh``: an SSH certificate of a key pair made in memory, not in the KRL yet."""
    engine = ctx.settings.ssh_engine
    if not engine:
        rec.note("no --ssh: SSH certificates not tested")
        return []
    from jitsec.broker.sdk_ssh import ssh_certificate  # noqa: PLC0415 - cryptography, only with --ssh

    held = ssh_certificate(task, [SSH_SCOPE], LONG_TTL, engine=engine)
    certificate = held.identity().certificate  # read once: no rotation later
    ctx.ledger.add(certificate)
    listed, reason = krl_listing(ctx.anonymous, engine, certificate)
    rec.check("SSH certificate not in the KRL before completion", listed is False, reason)
    probe = functools.partial(ssh_certificate_probe, ctx.anonymous, engine, certificate)
    return [Held(held.lease_id, "SSH certificate listed in the KRL after completion", probe,
                 ctx.settings.immediate_seconds)]


def _kafka_if_asked(ctx: Context, rec: Recorder, task: AgentTask) -> list[Held]:
    """With ``--kafka``: a SCRAM-SHA-512 user that logs in to the SASL listener."""
    engine = ctx.settings.kafka_engine
    if not engine:
        rec.note("no --kafka: Kafka credentials not tested")
        return []
    issued = ctx.secret(task, engine, [KAFKA_SCOPE], LONG_TTL)
    details = issued.handle.details
    login = KafkaLogin(ctx.settings.kafka_bootstrap or details.get("bootstrap_servers", ""),
                       issued.username or "", issued.value,
                       details.get("security_protocol") or "SASL_PLAINTEXT")
    accepted, reason = login.login()
    rec.check("Kafka SCRAM-SHA-512 login works before completion", accepted is True, reason)
    return [Held(issued.lease_id, "Kafka login refused after completion", login.probe,
                 max(ctx.settings.immediate_seconds, KAFKA_LIMIT))]


def _task_scopes(ctx: Context) -> list[str]:
    """Every scope 8.2's secrets need: tokens always, the other engines' when the suite was given them."""
    settings, pg = ctx.settings, ctx.postgres
    optional = ((pg.scope(GRANTED_TABLE, "SELECT") if pg else None, True),
                (X509_SCOPE, settings.x509_engine), (SSH_SCOPE, settings.ssh_engine),
                (KAFKA_SCOPE, settings.kafka_engine))
    return [ctx.READ, ctx.WRITE, *(scope for scope, wanted in optional if scope and wanted)]


def run(ctx: Context, rec: Recorder) -> None:
    limit = ctx.settings.immediate_seconds
    pg = ctx.postgres
    x509_engine = ctx.settings.x509_engine
    started = ctx.start_task(rec, ctx.agent(rec, "complete"), _task_scopes(ctx), ttl_seconds=LONG_TTL * 2,
                             label="8.2")
    task = ctx.enter(ctx.agent_task(started))
    task_token = task.token
    tokens = [ctx.secret(task, "token", [scope], LONG_TTL) for scope in (ctx.READ, ctx.WRITE)]
    tokens += _jwt_if_offered(ctx, rec, task)
    for token in tokens:
        rec.check(
            f"token {token.lease_id} works before completion", token_probe(ctx.resource, token.value).works
        )
    database = session = None
    if pg is not None:
        database = ctx.secret(task, "postgres", [pg.scope(GRANTED_TABLE, "SELECT")], LONG_TTL)
        session = pg.connect(database.username or "", database.value)
        rec.check("database session open before completion", session_alive(session).works)
    else:
        rec.note("no --postgres: database credentials and sessions not tested")
    certificate = serial = None
    if x509_engine:
        certificate = task.client_certificate(x509_engine, [X509_SCOPE], LONG_TTL)
        serial = _serial_of(certificate.certificate_pem)  # read once: no rotation later
        rec.check("client certificate not in the CRL before completion",
                  certificate_probe(ctx.anonymous, x509_engine, serial).works)
    else:
        rec.note("no --x509: client certificates not tested")
    elsewhere = [*_ssh_if_asked(ctx, rec, task), *_kafka_if_asked(ctx, rec, task)]

    body = task.client.complete_task(task.task_id, bearer=task_token)  # the agent completes its task
    task.complete()  # the SDK purges what it held (a second completion is a no-op at the broker)
    held = len(tokens) + (database is not None) + (certificate is not None) + len(elsewhere)
    expected = held + 1  # + the task token
    rec.check(
        "the broker revoked every lease of the task at completion",
        body.get("revoked") == expected and not body.get("retrying") and not body.get("failed"),
        f"revoked {body.get('revoked')} of {expected}, retrying {body.get('retrying')}, "
        f"failed {body.get('failed')}",
    )
    for token in tokens:
        ok, measured, reason = _dead_within(functools.partial(token_probe, ctx.resource, token.value), limit)
        rec.check(f"token {token.lease_id} dead after completion", ok, reason, measured=measured, limit=limit)
    ok, measured, reason = _dead_within(
        lambda: task_token_probe(ctx.anonymous, task_token, started.task_id), limit
    )
    rec.check("task token refused after completion", ok, reason, measured=measured, limit=limit)
    if pg is not None and database is not None and session is not None:
        ok, measured, reason = _dead_within(lambda: session_alive(session), limit)
        rec.check(
            "open database session terminated at completion", ok, reason, measured=measured, limit=limit
        )
        ok, measured, reason = _dead_within(lambda: pg.login(database.username or "", database.value), limit)
        rec.check("database login refused after completion", ok, reason, measured=measured, limit=limit)
        session.close()
    if x509_engine and serial is not None:
        probe = functools.partial(certificate_probe, ctx.anonymous, x509_engine, serial)
        ok, measured, reason = _dead_within(probe, limit)
        rec.check("client certificate listed in the CRL after completion", ok, reason, measured=measured,
                  limit=limit)
    for other in elsewhere:
        ok, measured, reason = _dead_within(other.probe, other.limit)
        rec.check(other.check, ok, reason, measured=measured, limit=other.limit)
    lease_ids = [issued.lease_id for issued in [*tokens, *([database] if database else [])]]
    for lease_id in [*lease_ids, *(other.lease_id for other in elsewhere)]:
        lease = ctx.lease(lease_id)
        rec.check(
            f"lease {lease_id} recorded as revoked at completion",
            lease["state"] == "revoked" and lease["revoke_reason"] == "task_complete",
            f"state {lease['state']}, reason {lease['revoke_reason']}",
        )
    ctx.cleanup([started.task_id])
