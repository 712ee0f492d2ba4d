"""The engine contract (docs/engines.md) as checks any engine's tests can run: built-in engines and a
third-party package's alike.

    from tests.broker.engine_contract import ContractCase, check_engine_contract
    check_engine_contract(ContractCase(engine=my_engine, scopes=("db:read",)), caplog)

Each check asserts something an engine can get wrong: two issues never give the same secret or
handle; revoking twice is not an error (and an engine that keeps its own state says ``ALREADY_GONE``
the second time); the secret appears in no ``repr``, no log record and no exception message the
engine produces while issuing, revoking or refusing scopes.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import pytest
from jitsec.broker.engines.base import Engine, IssuedCredential, IssueRequest, RevokeOutcome
from jitsec.broker.errors import ScopeError


@dataclass
class ContractCase:
    """``scopes``: a set the engine accepts; ``bad_scopes``: one it must refuse with ``ScopeError``.
    ``stateful_revoke``: the engine undoes something of its own on revoke (a role, a user), so it can
    tell a second revoke from the first. Store-backed engines (token, jwt) are not."""

    engine: Engine
    scopes: tuple[str, ...]
    bad_scopes: tuple[str, ...] = ("NOT A SCOPE",)
    stateful_revoke: bool = False
    ttl_seconds: int = 60
    issues: int = 5


def request_for(case: ContractCase, agent: str = "contract-agent") -> IssueRequest:
    now = time.time()
    return IssueRequest(lease_id=f"lse_{uuid.uuid4().hex[:24]}", agent=agent,
                        task_id=f"tsk_{uuid.uuid4().hex[:24]}", task_name="engine contract",
                        scopes=case.scopes, ttl_seconds=case.ttl_seconds,
                        expires_at=now + case.ttl_seconds)


def check_engine_contract(case: ContractCase, caplog: pytest.LogCaptureFixture) -> list[IssuedCredential]:
    """Run every check; returns the credentials issued (already revoked)."""
    engine = case.engine
    assert isinstance(engine, Engine)
    assert engine.limits.default_ttl_seconds <= engine.limits.max_ttl_seconds
    engine.validate_scopes(case.scopes)
    with pytest.raises(ScopeError):
        engine.validate_scopes(case.bad_scopes)
    with caplog.at_level(logging.DEBUG):
        issued = [engine.issue(request_for(case)) for _ in range(case.issues)]
        check_unique(issued)
        check_never_shown(engine, issued, caplog)
        check_revoke_idempotent(case, issued)
        check_never_shown(engine, issued, caplog)
    return issued


def check_unique(issued: Sequence[IssuedCredential]) -> None:
    secrets = [credential.secret for credential in issued]
    assert all(secrets) and len(set(secrets)) == len(secrets), "two issues gave the same secret"
    handles = [credential.handle for credential in issued if credential.handle]
    assert len(set(handles)) == len(handles), "two issues gave the same handle"


def check_revoke_idempotent(case: ContractCase, issued: Sequence[IssuedCredential]) -> None:
    for credential in issued:
        assert case.engine.revoke(credential.handle) in (RevokeOutcome.REVOKED, RevokeOutcome.ALREADY_GONE)
        again = case.engine.revoke(credential.handle)
        if case.stateful_revoke:
            assert again is RevokeOutcome.ALREADY_GONE, "a second revoke must say ALREADY_GONE"
        else:
            assert again in (RevokeOutcome.REVOKED, RevokeOutcome.ALREADY_GONE)


def check_never_shown(engine: Engine, issued: Sequence[IssuedCredential],
                      caplog: pytest.LogCaptureFixture) -> None:
    texts = [repr(engine), *(repr(credential) for credential in issued)]
    texts += [record.getMessage() for record in caplog.records]
    for credential in issued:
        try:
            engine.validate_scopes((credential.secret,))
        except ScopeError as error:  # refusing a secret pasted as a scope must not echo it
            texts.append(str(error))
    for credential in issued:
        assert not any(credential.secret in text for text in texts), "the secret was shown"
