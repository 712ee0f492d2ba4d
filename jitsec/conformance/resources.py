"""The resources a secret is tried against: the broker's introspection (tokens), the broker's own API
(task tokens, grants) and a real PostgreSQL database (``jitpg_`` passwords).

Each probe answers "does this credential work right now?" and a short reason. Reasons built while a
secret is in hand are scrubbed (``jitsec.kernel.redaction.scrub``) before they leave this module.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from jitsec.broker.client import BrokerAPIError, BrokerClient
from jitsec.kernel.redaction import scrub

if TYPE_CHECKING:  # psycopg is imported where a database is used (only with --postgres)
    import psycopg
    from psycopg.rows import TupleRow

SCHEMA = "jitsec_conformance"
GRANTED_TABLE = "granted"
OTHER_TABLE = "other"
FIXTURE_LOCK = "jitsec-conformance-fixture"
# The suite's own statements against the fixture (constants: no request text ever reaches SQL).
SELECT_GRANTED = "SELECT count(*) FROM jitsec_conformance.granted"
SELECT_OTHER = "SELECT count(*) FROM jitsec_conformance.other"
INSERT_GRANTED = "INSERT INTO jitsec_conformance.granted VALUES (2, 'x')"
CREATE_IN_SCHEMA = "CREATE TABLE jitsec_conformance.conformance_escape (id int)"


@dataclass(frozen=True, slots=True)
class Probe:
    works: bool
    reason: str


def certificate_probe(broker: BrokerClient, engine: str, serial: int) -> Probe:
    """A client certificate works until its engine's CRL (as the broker publishes it) is shown to list
    it: a CRL that cannot be read never counts as a revocation."""
    from cryptography import x509  # noqa: PLC0415 - only with --x509 (the broker extra has it)

    try:
        crl = x509.load_der_x509_crl(broker.x509_crl(engine))
    except (BrokerAPIError, httpx.HTTPError, ValueError) as error:
        return Probe(True, f"the CRL could not be read, so not shown revoked: {error}")
    listed = crl.get_revoked_certificate_by_serial_number(serial) is not None
    return Probe(not listed, "listed in the CRL" if listed else "not listed in the CRL")


def token_probe(resource: BrokerClient, token: str) -> Probe:
    """An engine token works when introspection says it is active."""
    try:
        active = bool(resource.introspect(token, resource="jitsec-conformance").get("active"))
    except (BrokerAPIError, httpx.HTTPError) as error:
        return Probe(False, scrub(f"introspection failed: {error}", [token]))
    return Probe(active, "introspection active" if active else "introspection inactive")


def task_token_probe(anonymous: BrokerClient, token: str, task_id: str) -> Probe:
    """A task token works when the broker still answers its own task's lookup with it."""
    try:
        anonymous.get_task(task_id, bearer=token)
    except BrokerAPIError as error:
        return Probe(False, f"refused: {error.status} {error.code}")
    except httpx.HTTPError as error:
        return Probe(False, scrub(f"request failed: {type(error).__name__}", [token]))
    return Probe(True, "the broker accepted the task token")


def grant_probe(anonymous: BrokerClient, grant: str, task_id: str) -> Probe:
    """A grant works when it can be redeemed (again). A success here is itself a finding."""
    try:
        anonymous.redeem(task_id, grant)
    except BrokerAPIError as error:
        return Probe(False, f"refused: {error.status} {error.code}")
    except httpx.HTTPError as error:
        return Probe(False, scrub(f"request failed: {type(error).__name__}", [grant]))
    return Probe(True, "the grant was redeemed")


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.02) -> float | None:
    """Poll until ``predicate`` holds; the monotonic time it first held, or None at the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return time.monotonic()
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


class PostgresTarget:
    """The database the PostgreSQL engine issues roles for, seen as a resource the agent uses.

    ``dsn`` must be allowed to create the schema ``jitsec_conformance`` with two small tables
    (``granted`` and ``other``) in its database; they are created once and left in place.
    """

    def __init__(self, dsn: str, connect_timeout: float = 5.0) -> None:
        from psycopg.conninfo import conninfo_to_dict  # noqa: PLC0415 - psycopg only when used

        self._dsn = dsn
        self._timeout = connect_timeout
        parts = conninfo_to_dict(dsn)
        self.database = str(parts.get("dbname") or parts.get("user") or "postgres")
        self.host = str(parts.get("host") or "localhost")
        self.port = str(parts.get("port") or 5432)

    def __repr__(self) -> str:
        return f"PostgresTarget({self.host}:{self.port}/{self.database})"

    def ensure_fixture(self) -> None:
        import psycopg  # noqa: PLC0415
        from psycopg import sql  # noqa: PLC0415

        schema = sql.Identifier(SCHEMA)
        with psycopg.connect(self._dsn, connect_timeout=int(self._timeout)) as conn:
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (FIXTURE_LOCK,))
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(schema))
            for table in (GRANTED_TABLE, OTHER_TABLE):
                target = sql.Identifier(SCHEMA, table)
                conn.execute(
                    sql.SQL("CREATE TABLE IF NOT EXISTS {} (id int PRIMARY KEY, note text)").format(target)
                )
                conn.execute(
                    sql.SQL("INSERT INTO {} VALUES (1, 'conformance fixture') ON CONFLICT DO NOTHING").format(
                        target
                    )
                )

    def scope(self, table: str, privilege: str) -> str:
        from jitsec.broker.engines.postgres_scope import PostgresScope, Privilege  # noqa: PLC0415

        return PostgresScope(self.database, SCHEMA, table, Privilege(privilege)).render()

    def connect(self, username: str, password: str) -> psycopg.Connection[TupleRow]:
        """A session as the lease's role (raises psycopg errors; the caller scrubs them)."""
        import psycopg  # noqa: PLC0415
        from psycopg.conninfo import make_conninfo  # noqa: PLC0415

        conninfo = make_conninfo(
            self._dsn, user=username, password=password, connect_timeout=str(max(1, int(self._timeout)))
        )
        return psycopg.connect(conninfo, autocommit=True)

    def login(self, username: str, password: str) -> Probe:
        import psycopg  # noqa: PLC0415

        try:
            with self.connect(username, password) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error as error:
            return Probe(False, scrub(f"login refused: {_first_line(error)}", [password]))
        return Probe(True, "login accepted")

    def run(self, username: str, password: str, statement: str) -> Probe:
        """Run one fixed statement of the suite's own as the lease's role."""
        import psycopg  # noqa: PLC0415

        try:
            with self.connect(username, password) as conn:
                conn.execute(statement)  # the suite's own constant SQL, never request text
        except psycopg.Error as error:
            state = error.sqlstate or "-"
            return Probe(False, scrub(f"refused ({state}): {_first_line(error)}", [password]))
        return Probe(True, "statement succeeded")


def session_alive(conn: psycopg.Connection[Any]) -> Probe:
    """Whether an open session still answers (it must not once its credential is revoked)."""
    import psycopg  # noqa: PLC0415

    try:
        conn.execute("SELECT 1")
    except psycopg.Error as error:
        return Probe(False, f"session ended: {_first_line(error)}")
    return Probe(True, "session still answers")


def _first_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return (lines[0] if lines else type(error).__name__)[:200]
