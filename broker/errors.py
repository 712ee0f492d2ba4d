"""The broker's exception tree. Every error carries a stable ``code`` and an HTTP ``status`` so the
API maps it without a lookup table, and a message that never contains a secret.

    BrokerError
    ├── BadRequest (400/422)      malformed or hostile input
    │   └── ScopeError            a scope the engine does not understand
    ├── PolicyDenied (403)        beyond policy: scope, TTL (message names the maximum), quarantine
    ├── Unauthenticated (401)     missing, unknown, expired or replayed credential
    ├── Forbidden (403)           authenticated, but the wrong role or someone else's task
    ├── NotFound (404)            unknown task, lease or engine
    ├── Conflict (409)            the task is completed, the lease is no longer active
    └── EngineError (502)         the engine failed
        └── TransientEngineError  ask for a retry (revocation retries with backoff)
"""

from __future__ import annotations


class BrokerError(Exception):
    """Base of every broker error: ``code`` is machine-readable, ``str(error)`` the reason."""

    status: int = 400
    code: str = "bad_request"

    def __init__(self, reason: str, *, code: str | None = None) -> None:
        super().__init__(reason)
        if code is not None:
            self.code = code

    @property
    def reason(self) -> str:
        return str(self)


class BadRequest(BrokerError):
    status = 422
    code = "bad_request"


class ScopeError(BadRequest):
    """An engine does not accept a scope's syntax (raised by ``Engine.validate_scopes``)."""

    code = "invalid_scope"


class PolicyDenied(BrokerError):
    status = 403
    code = "policy_denied"


class Unauthenticated(BrokerError):
    status = 401
    code = "unauthenticated"


class Forbidden(BrokerError):
    status = 403
    code = "forbidden"


class NotFound(BrokerError):
    status = 404
    code = "not_found"


class Conflict(BrokerError):
    status = 409
    code = "conflict"


class EngineError(BrokerError):
    """The engine failed for good (issue or revoke)."""

    status = 502
    code = "engine_error"


class TransientEngineError(EngineError):
    """The engine failed in a way worth retrying (connection lost, lock timeout)."""

    status = 503
    code = "engine_unavailable"


class ConfigError(Exception):
    """The broker configuration is invalid; the message names the file and the field."""
