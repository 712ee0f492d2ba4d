"""What a JWT access token says (RFC 9068), from the scopes policy granted: the scope grammar and the
claims. Pure functions, no keys and no I/O.

Scopes of the ``jwt`` engine:

- ``aud:NAME`` names an audience: a resource server's identifier, either a name (``aud:reports``) or an
  ``https://`` URL (``aud:https://reports.example.com``). Every ``aud:`` scope goes into ``aud``.
- ``resource:action`` (lowercase letters, digits, ``_.-``, at least one ``:``; ``reports:read``) goes
  into the space-separated ``scope`` claim.
- A token without ``aud:`` scopes is for the resources its scopes name: ``reports:read`` and
  ``reports:write`` give ``aud = "reports"``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import regex
from jitsec.broker.engines.base import IssueRequest
from jitsec.broker.errors import ScopeError

from jitsec.kernel.redaction import shown

AUDIENCE_PREFIX = "aud:"
_ACTION = regex.compile(r"[a-z0-9][a-z0-9_.\-]*(?::[a-z0-9_.\-]+)+")
_AUDIENCE = regex.compile(
    r"[a-z0-9][a-z0-9_.\-]{0,99}"
    r"|https://[a-z0-9](?:[a-z0-9.\-]{0,252})(?::[0-9]{1,5})?(?:/[A-Za-z0-9_.~\-/]{0,200})?"
)
MAX_SCOPE_LENGTH = 128


def validate_scopes(scopes: Sequence[str]) -> None:
    """``ScopeError`` naming the first scope that is neither ``aud:NAME`` nor ``resource:action``."""
    if not scopes:
        raise ScopeError("a JWT needs at least one scope: aud:NAME or resource:action")
    for scope in scopes:
        if len(scope) > MAX_SCOPE_LENGTH or "*" in scope:
            raise ScopeError(f"scope {shown(scope)!r} is too long or holds a wildcard")
        if scope.startswith(AUDIENCE_PREFIX):
            if not _AUDIENCE.fullmatch(scope.removeprefix(AUDIENCE_PREFIX)):
                raise ScopeError(f"scope {shown(scope)!r}: an audience is aud:NAME (lowercase letters, "
                                 "digits, '_', '.', '-') or aud:https://host/path")
        elif not _ACTION.fullmatch(scope):
            raise ScopeError(f"scope {shown(scope)!r} is not of the form 'resource:action' or 'aud:NAME' "
                             "(lowercase letters, digits, '_', '.', '-', separated by ':')")


def audiences(scopes: Sequence[str]) -> list[str]:
    """The ``aud`` values: the ``aud:`` scopes, else the resource each scope names, in order."""
    named = [s.removeprefix(AUDIENCE_PREFIX) for s in scopes if s.startswith(AUDIENCE_PREFIX)]
    if named:
        return list(dict.fromkeys(named))
    return list(dict.fromkeys(scope.partition(":")[0] for scope in scopes))


def claims(request: IssueRequest, issuer: str, now: float) -> dict[str, Any]:
    """The RFC 9068 claim set for one lease: ``jti`` is the lease id, ``exp`` never after the lease."""
    expires = int(request.expires_at)  # rounded down: the token dies no later than its lease
    issued_at = min(int(now), expires - 1)
    audience = audiences(request.scopes)
    body: dict[str, Any] = {
        "iss": issuer,
        "sub": request.agent,
        "aud": audience[0] if len(audience) == 1 else audience,
        "client_id": request.agent,
        "iat": issued_at,
        "nbf": issued_at,
        "exp": expires,
        "jti": request.lease_id,
        "task": request.task_id,
    }
    scope = " ".join(s for s in request.scopes if not s.startswith(AUDIENCE_PREFIX))
    if scope:
        body["scope"] = scope
    return body


def header(key_id: str, algorithm: str) -> Mapping[str, str]:
    """``typ`` first: every token of the broker starts with the same bytes, which the scanner's
    ``broker-jwt`` rule keys on."""
    return {"typ": "at+jwt", "alg": algorithm, "kid": key_id}
