"""Role lifecycle SQL: create a lease's LOGIN role with exactly its grants, and take it apart.

Every name reaches SQL through ``sql.Identifier`` and every value through ``sql.Literal`` or a bound
parameter; privileges come from the ``Privilege`` enum, never from request text. The password is
sent as a SCRAM-SHA-256 verifier computed client-side (``postgres_scram``), so the plaintext never
appears in a statement, a server log or ``pg_stat_activity``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

import psycopg
from jitsec.broker.engines.base import RevokeOutcome
from jitsec.broker.engines.postgres_connections import AdminConnections, DatabaseMissing
from jitsec.broker.engines.postgres_scope import PostgresScope
from jitsec.broker.engines.postgres_scram import DEFAULT_ITERATIONS, scram_sha256_verifier
from psycopg import sql

T = TypeVar("T")

ROLE_COMMENT_MARK = "jitsec lease "
TERMINATE_WAIT_SECONDS = 5.0
# Concurrent GRANT/REVOKE on one table can fail with "tuple concurrently updated": ACL changes of the
# broker take this transaction-scoped advisory lock (advisory keys are per database) to queue instead.
ACL_LOCK_KEY = 0x6A69747365630001


class SessionsSurvived(Exception):
    """Sessions of a role outlived termination; revocation must be retried (transient)."""


@dataclass(frozen=True, slots=True)
class RoleRequest:
    """Everything needed to create one lease's role (the password stays with the caller)."""

    name: str
    valid_until: datetime
    connection_limit: int
    scopes: tuple[PostgresScope, ...]
    lease_id: str
    issued_at: datetime


@dataclass(frozen=True, slots=True)
class ManagedRole:
    """A role carrying the broker's prefix and mark, as the reconciler sees it."""

    name: str
    lease_id: str | None
    issued_at: datetime | None


def role_comment(lease_id: str, issued_at: datetime) -> str:
    return f"{ROLE_COMMENT_MARK}{lease_id} issued {issued_at.isoformat()}"


def parse_role_comment(comment: str | None) -> tuple[str | None, datetime | None]:
    if not comment or not comment.startswith(ROLE_COMMENT_MARK):
        return None, None
    lease_id, _, issued = comment[len(ROLE_COMMENT_MARK) :].partition(" issued ")
    try:
        return lease_id or None, datetime.fromisoformat(issued)
    except ValueError:
        return lease_id or None, None


def create_role(conn: psycopg.Connection, request: RoleRequest, password: str, *,
                scram_iterations: int = DEFAULT_ITERATIONS) -> None:
    """Create the role and grant each scope in ONE transaction: any failure leaves no role behind.

    ``conn`` is an autocommit admin connection to the scopes' database (all scopes name it). All
    statements go in one simple-protocol message: PostgreSQL runs such a message as one implicit
    transaction, in one round trip. Catalog races ("tuple concurrently updated") are retried.
    """
    role = sql.Identifier(request.name)
    verifier = scram_sha256_verifier(password, iterations=scram_iterations)
    statements = [
        sql.SQL("SELECT pg_advisory_xact_lock({})").format(sql.Literal(ACL_LOCK_KEY)),
        sql.SQL(
            "CREATE ROLE {} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"
            " INHERIT PASSWORD {} VALID UNTIL {} CONNECTION LIMIT {}"
        ).format(
            role,
            sql.Literal(verifier),
            sql.Literal(request.valid_until.isoformat()),
            sql.Literal(int(request.connection_limit)),
        ),
        sql.SQL("COMMENT ON ROLE {} IS {}").format(
            role, sql.Literal(role_comment(request.lease_id, request.issued_at))),
        *grant_statements(request.name, request.scopes),
    ]
    script = sql.SQL("; ").join(statements)
    retry_catalog_races(lambda: conn.execute(script))


def retry_catalog_races(work: Callable[[], T], attempts: int = 6) -> T:
    """Run ``work`` again when PostgreSQL reports "tuple concurrently updated".

    Catalog rows such as ``pg_database.datacl`` are updated without a row lock (e.g. by VACUUM's
    in-place updates), so a GRANT or REVOKE can lose a race that a retry wins at once.
    """
    for attempt in range(1, attempts + 1):
        try:
            return work()
        except psycopg.errors.InternalError_ as error:
            if "concurrently" not in str(error) or attempt == attempts:
                raise
            time.sleep(random.uniform(0.001, 0.005) * attempt)
    raise AssertionError("unreachable")


def grant_statements(role_name: str, scopes: Iterable[PostgresScope]) -> list[sql.Composed]:
    """The GRANTs for ``scopes``, deduplicated, in a stable order (database, schema, table)."""
    role = sql.Identifier(role_name)
    statements: list[sql.Composed] = []
    seen: set[object] = set()

    def add(key: object, statement: sql.Composed) -> None:
        if key not in seen:
            seen.add(key)
            statements.append(statement)

    for scope in scopes:
        add(
            ("db", scope.database),
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(scope.database), role),
        )
        add(
            ("schema", scope.schema),
            sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sql.Identifier(scope.schema), role),
        )
    for scope in scopes:
        privilege = sql.SQL(scope.privilege.value)
        if scope.table is None:
            target = sql.SQL("ALL TABLES IN SCHEMA {}").format(sql.Identifier(scope.schema))
        else:
            target = sql.SQL("TABLE {}").format(sql.Identifier(scope.schema, scope.table))
        add(scope, sql.SQL("GRANT {} ON {} TO {}").format(privilege, target, role))
    return statements


def revoke_role(connections: AdminConnections, name: str, databases: Iterable[str]) -> RevokeOutcome:
    """``_revoke_role`` with catalog races retried (every step is idempotent, so it restarts)."""
    wanted = list(databases)
    return retry_catalog_races(lambda: _revoke_role(connections, name, wanted))


def _revoke_role(connections: AdminConnections, name: str, databases: Iterable[str]) -> RevokeOutcome:
    """Take a role apart; idempotent (a role already gone is ``ALREADY_GONE``).

    Order matters: NOLOGIN first so no new session starts, then terminate open sessions (dropping a
    role does not end them), then in every database the role has privileges or objects in
    (the lease's own plus whatever ``pg_shdepend`` records) DROP OWNED, then DROP ROLE, and last
    confirm that no role and no session of that oid remains.

    What the role created is dropped, never handed to the admin: where PUBLIC may CREATE in a
    schema, a lease could plant a ``SECURITY DEFINER`` function or a view that, owned by the admin
    after a REASSIGN, would run as the admin for anyone. An object of the lease that something else
    depends on makes DROP OWNED fail: the revocation then fails loudly (alerted), with the role
    already NOLOGIN and its sessions ended.
    """
    with connections.connection() as conn:
        oid = _role_oid(conn, name)
        if oid is None:
            return RevokeOutcome.ALREADY_GONE
        try:
            conn.execute(sql.SQL("ALTER ROLE {} NOLOGIN").format(sql.Identifier(name)))
        except psycopg.errors.UndefinedObject:
            return RevokeOutcome.ALREADY_GONE  # another revoker (reconciler, second broker) was faster
        _terminate_sessions(conn, oid)
        touched = set(databases) | _dependent_databases(conn, oid)
    for database in sorted(touched):
        _drop_owned(connections, database, name)
    with connections.connection() as conn:
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))
        _terminate_sessions(conn, oid)
        if _role_oid(conn, name) is not None:
            raise SessionsSurvived(f"role {name!r} still exists after DROP ROLE")
    return RevokeOutcome.REVOKED


def list_managed_roles(conn: psycopg.Connection, prefix: str) -> list[ManagedRole]:
    """Roles whose name starts with ``prefix`` AND whose comment carries the broker's mark."""
    rows = conn.execute(
        "SELECT r.rolname, pg_catalog.shobj_description(r.oid, 'pg_authid')"
        " FROM pg_catalog.pg_roles r WHERE starts_with(r.rolname, %s)",
        (prefix,),
    ).fetchall()
    managed = []
    for rolname, comment in rows:
        lease_id, issued_at = parse_role_comment(comment)
        if lease_id is not None:
            managed.append(ManagedRole(name=rolname, lease_id=lease_id, issued_at=issued_at))
    return managed


def role_exists(conn: psycopg.Connection, name: str) -> bool:
    return _role_oid(conn, name) is not None


def _role_oid(conn: psycopg.Connection, name: str) -> int | None:
    row = conn.execute("SELECT oid FROM pg_catalog.pg_roles WHERE rolname = %s", (name,)).fetchone()
    return None if row is None else int(row[0])


def _terminate_sessions(conn: psycopg.Connection, oid: int) -> None:
    """Signal every backend of ``oid`` and poll until none is left; SessionsSurvived after the wait.

    ``pg_terminate_backend`` with a timeout polls in 100 ms steps; polling here in short steps makes
    revocation take milliseconds when the sessions exit at once, as they do.
    """
    query = "SELECT pid FROM pg_catalog.pg_stat_activity WHERE usesysid = %s AND pid <> pg_backend_pid()"
    deadline = time.monotonic() + TERMINATE_WAIT_SECONDS
    delay = 0.002
    while True:
        pids = [row[0] for row in conn.execute(query, (oid,)).fetchall()]
        if not pids:
            return
        if time.monotonic() > deadline:
            raise SessionsSurvived(f"{len(pids)} session(s) of role oid {oid} survived termination")
        conn.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", (pids,))
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def _dependent_databases(conn: psycopg.Connection, oid: int) -> set[str]:
    rows = conn.execute(
        "SELECT DISTINCT d.datname FROM pg_catalog.pg_shdepend s"
        " JOIN pg_catalog.pg_database d ON d.oid = s.dbid"
        " WHERE s.refclassid = 'pg_catalog.pg_authid'::regclass AND s.refobjid = %s",
        (oid,),
    ).fetchall()
    return {row[0] for row in rows}


def _drop_owned(connections: AdminConnections, database: str, name: str) -> None:
    role = sql.Identifier(name)
    try:
        with connections.connection(database) as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (ACL_LOCK_KEY,))
            conn.execute(sql.SQL("DROP OWNED BY {}").format(role))  # its objects die with it
    except DatabaseMissing:
        return  # a dropped database took the role's privileges in it along
    except psycopg.errors.UndefinedObject:
        return  # the role vanished meanwhile (another revoker): nothing left to drop
