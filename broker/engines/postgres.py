"""The PostgreSQL engine: one LOGIN role per lease, holding exactly the lease's table privileges.

``issue`` creates the role (password in the broker's ``jitpg_`` format, ``VALID UNTIL`` the lease's
expiry so expiry holds even with the broker down, a connection limit) in one transaction; ``revoke``
takes it apart and ends its sessions; ``reconcile`` drops roles of the broker's making that no live
lease backs. Scope grammar: ``broker.engines.postgres_scope``; role names: ``postgres_naming``; SQL:
``postgres_roles``. Configured by ``[engines.postgres]`` (see docs/postgres.md).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
from jitsec.broker.engines.base import (
    EngineLimits,
    EngineSettings,
    IssuedCredential,
    IssueRequest,
    RevokeOutcome,
)
from jitsec.broker.engines.options import options_record
from jitsec.broker.engines.postgres_connections import AdminConnections, DatabaseMissing, PostgresUnavailable
from jitsec.broker.engines.postgres_naming import DEFAULT_ROLE_PREFIX, role_name, validate_prefix
from jitsec.broker.engines.postgres_roles import (
    RoleRequest,
    SessionsSurvived,
    create_role,
    list_managed_roles,
    revoke_role,
)
from jitsec.broker.engines.postgres_scope import PostgresScope, ScopeError, parse_scope
from jitsec.broker.engines.postgres_scram import DEFAULT_ITERATIONS
from jitsec.broker.errors import EngineError, TransientEngineError
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from jitsec.kernel.credential_format import CredentialKind, mint
from jitsec.kernel.redaction import scrub

# SQLSTATEs that mean "the scope names something that is not there": the request is wrong, not the engine.
_MISSING_OBJECT_STATES = frozenset({"42P01", "3F000", "42704", "3D000"})
# SQLSTATEs worth retrying besides connection-level failures (psycopg.OperationalError covers those,
# serialization failures and deadlocks).
_TRANSIENT_STATES = frozenset({"2BP01", "XX000", "55006"})

log = logging.getLogger("jitsec.broker.engines.postgres")


@dataclass(frozen=True, slots=True)
class PostgresEngineConfig:
    """The options of ``[engines.postgres]`` beyond the TTL limits."""

    admin_dsn: str
    admin_password: str = field(default="", repr=False)  # from admin_password_sealed/_file/_env
    connection_limit: int = 5
    role_prefix: str = DEFAULT_ROLE_PREFIX
    allow_schema_wide: bool = True
    connect_timeout_seconds: float = 5.0
    reconcile_grace_seconds: float = 120.0
    public_host: str | None = None
    public_port: int | None = None
    scram_iterations: int = DEFAULT_ITERATIONS

    def __post_init__(self) -> None:
        if not self.admin_dsn:
            raise ValueError("admin_dsn is required")
        if self.connection_limit < 1:
            raise ValueError("connection_limit must be at least 1")
        validate_prefix(self.role_prefix)
        if self.connect_timeout_seconds <= 0 or self.reconcile_grace_seconds < 0:
            raise ValueError("connect_timeout_seconds must be > 0 and reconcile_grace_seconds >= 0")
        if self.scram_iterations < 1:
            raise ValueError("scram_iterations must be at least 1")

    @classmethod
    def from_options(cls, section: str, options: Mapping[str, Any]) -> PostgresEngineConfig:
        return options_record(cls, section, options)


@dataclass(frozen=True, slots=True)
class RoleHandle:
    """What the store keeps to revoke a lease's role: its name and the database of its grants."""

    role: str
    database: str

    def encode(self) -> str:
        return json.dumps(
            {"role": self.role, "database": self.database}, ensure_ascii=False, separators=(",", ":")
        )

    @classmethod
    def decode(cls, handle: str) -> RoleHandle:
        try:
            data = json.loads(handle)
            return cls(role=str(data["role"]), database=str(data["database"]))
        except (ValueError, KeyError, TypeError):
            raise EngineError("postgres: unreadable lease handle") from None


class PostgresEngine:
    """Thread-safe; holds a small pool of admin connections per database (closed by ``close``)."""

    def __init__(
        self,
        config: PostgresEngineConfig,
        *,
        name: str = "postgres",
        limits: EngineLimits | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.limits = limits or EngineLimits()
        self.config = config
        self._clock = clock
        self._checked_databases: set[str] = set()  # warned about PUBLIC CREATE once each
        target = conninfo_to_dict(config.admin_dsn)
        if target.get("password"):
            log.warning("engines.%s: admin_dsn holds the admin password in clear; move it to "
                        "admin_password_from_file (mode 0600), admin_password_from_env, or seal it with a "
                        "PKCS#11 token (docs/broker.md, \"Security model\")", name)
        admin_dsn = (make_conninfo(config.admin_dsn, password=config.admin_password) if config.admin_password
                     else config.admin_dsn)
        self._connections = AdminConnections(admin_dsn, connect_timeout=config.connect_timeout_seconds)
        self._host = config.public_host or str(target.get("host") or "localhost")
        self._port = str(config.public_port or target.get("port") or 5432)
        self._reconcile_lock = threading.Lock()

    # -- Engine protocol -------------------------------------------------------------------------

    def validate_scopes(self, scopes: Sequence[str]) -> None:
        self.parse_scopes(scopes)

    def parse_scopes(self, scopes: Sequence[str]) -> tuple[PostgresScope, ...]:
        """Parse every scope (canonical spelling only); one lease covers one database, so all scopes
        must name the same one."""
        if not scopes:
            raise ScopeError("a postgres lease needs at least one scope")
        parsed = tuple(parse_scope(s, allow_schema_wide=self.config.allow_schema_wide) for s in scopes)
        for text, scope in zip(scopes, parsed, strict=True):
            # One spelling per scope, so that policy globs and the task's scope list see the same text.
            if scope.render() != text:
                raise ScopeError(f"scope {text!r} is not in canonical form; write it as {scope.render()!r}")
        databases = sorted({scope.database for scope in parsed})
        if len(databases) > 1:
            raise ScopeError(
                f"a postgres lease covers one database; the scopes name {len(databases)}: "
                + ", ".join(repr(d) for d in databases)
            )
        return parsed

    def issue(self, request: IssueRequest) -> IssuedCredential:
        scopes = self.parse_scopes(request.scopes)
        database = scopes[0].database
        # the task id, never the task's name: role names are readable by every user of the database
        # (pg_roles), and a name is free text an orchestrator may fill with anything
        name = role_name(self.config.role_prefix, request.agent, request.task_id, request.lease_id)
        role_request = RoleRequest(
            name=name,
            valid_until=datetime.fromtimestamp(request.expires_at, UTC),
            connection_limit=self.config.connection_limit,
            scopes=scopes,
            lease_id=request.lease_id,
            issued_at=datetime.fromtimestamp(self._clock(), UTC),
        )
        password = mint(CredentialKind.POSTGRES_PASSWORD)
        try:
            with self._connections.connection(database) as conn:
                if database not in self._checked_databases:
                    _warn_if_public_may_create(conn, database)
                    self._checked_databases.add(database)
                create_role(conn, role_request, password, scram_iterations=self.config.scram_iterations)
        except DatabaseMissing:
            raise ScopeError(f"database {database!r} does not exist") from None
        except PostgresUnavailable as error:
            raise TransientEngineError(f"postgres: {error}") from None
        except psycopg.Error as error:
            raise _issue_error(error, password) from None
        return IssuedCredential(
            secret=password,
            handle=RoleHandle(role=name, database=database).encode(),
            username=name,
            details={"host": self._host, "port": self._port, "database": database},
        )

    def revoke(self, handle: str) -> RevokeOutcome:
        target = RoleHandle.decode(handle)
        try:
            return revoke_role(self._connections, target.role, [target.database])
        except (PostgresUnavailable, SessionsSurvived) as error:
            raise TransientEngineError(f"postgres: {error}") from None
        except psycopg.Error as error:
            raise _revoke_error(error, target.role) from None

    def reconcile(self, live_handles: Collection[str]) -> int:
        """Drop roles with the broker's prefix and mark that no live lease backs.

        Roles younger than ``reconcile_grace_seconds`` are spared: their lease may be between
        ``issue`` and the store's write. Runs one at a time per engine.
        """
        live = {RoleHandle.decode(handle).role for handle in live_handles if handle}
        cutoff = self._clock() - self.config.reconcile_grace_seconds
        with self._reconcile_lock:
            try:
                with self._connections.connection() as conn:
                    managed = list_managed_roles(conn, self.config.role_prefix)
                removed = 0
                for role in managed:
                    if role.name in live:
                        continue
                    if role.issued_at is not None and role.issued_at.timestamp() > cutoff:
                        continue
                    if revoke_role(self._connections, role.name, []) is RevokeOutcome.REVOKED:
                        removed += 1
                return removed
            except (PostgresUnavailable, SessionsSurvived) as error:
                raise TransientEngineError(f"postgres: {error}") from None
            except psycopg.Error as error:
                raise _revoke_error(error, "(reconcile)") from None

    def close(self) -> None:
        self._connections.close()


_PUBLIC_CREATE = (
    "SELECT nspname FROM pg_catalog.pg_namespace WHERE has_schema_privilege('public', oid, 'CREATE') "
    "AND nspname <> 'information_schema' AND NOT starts_with(nspname, 'pg_') ORDER BY nspname"
)


def _warn_if_public_may_create(conn: psycopg.Connection, database: str) -> None:
    """Warn, once per database, when every role may CREATE in a schema (PostgreSQL before 15, and
    databases upgraded or restored from one): a lease could then create objects beyond its scope.
    They are dropped at revocation, but meanwhile they exist; ``REVOKE CREATE ON SCHEMA ... FROM
    PUBLIC`` closes it."""
    schemas = [row[0] for row in conn.execute(_PUBLIC_CREATE).fetchall()]
    if schemas:
        log.warning("postgres engine: in database %r, PUBLIC may CREATE in schema(s) %s: a lease can "
                    "create objects there beyond its scope (they are dropped when it is revoked); run "
                    "REVOKE CREATE ON SCHEMA %s FROM PUBLIC", database, ", ".join(schemas), schemas[0])


def create(settings: EngineSettings) -> PostgresEngine:
    """Registry factory for ``[engines.postgres]``."""
    config = PostgresEngineConfig.from_options(settings.name, settings.options)
    return PostgresEngine(config, name=settings.name, limits=settings.limits)


def _issue_error(error: psycopg.Error, password: str) -> Exception:
    reason = scrub(_summary(error), [password])
    if error.sqlstate in _MISSING_OBJECT_STATES:
        return ScopeError(f"postgres: {reason}; no role was created")
    if isinstance(error, psycopg.OperationalError) or error.sqlstate in _TRANSIENT_STATES:
        return TransientEngineError(f"postgres: {reason}; no role was created")
    return EngineError(f"postgres: {reason}; no role was created")


def _revoke_error(error: psycopg.Error, role: str) -> Exception:
    reason = f"postgres: revoking {role!r}: {_summary(error)}"
    if isinstance(error, psycopg.OperationalError) or error.sqlstate in _TRANSIENT_STATES:
        return TransientEngineError(reason)
    return EngineError(reason)


def _summary(error: psycopg.Error) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__
