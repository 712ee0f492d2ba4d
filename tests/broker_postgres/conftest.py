"""Fixtures for the PostgreSQL engine and store tests: a fresh database per module, built from the
superuser DSN that ``scripts/services start postgres`` prints, and a loopback TCP proxy that lets a
test cut the broker off from PostgreSQL without disturbing the shared cluster (stop it: "the database
went away"; start it again on the same port: "it came back")."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from jitsec.broker.engines.postgres_connections import AdminConnections
from jitsec.broker.engines.postgres_roles import revoke_role
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo


@contextlib.contextmanager
def _database(postgres_dsn: str, label: str) -> Iterator[str]:
    name = f"jitsec_t_{label[:20]}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_dsn, autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_conninfo(postgres_dsn, dbname=name)
    finally:
        with psycopg.connect(postgres_dsn, autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="module")
def fresh_database(postgres_dsn: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """The superuser DSN pointed at a database created for this test module (dropped afterwards)."""
    with _database(postgres_dsn, request.module.__name__.rpartition(".")[2].removeprefix("test_")) as dsn:
        yield dsn


@pytest.fixture
def scratch_database(postgres_dsn: str) -> Iterator[str]:
    """Like ``fresh_database``, for one test only (for tests that break what they touch)."""
    with _database(postgres_dsn, "scratch") as dsn:
        yield dsn


@pytest.fixture
def role_prefix(postgres_dsn: str) -> Iterator[str]:
    """A role prefix unique to one test, so tests never see (or drop) each other's roles; whatever a
    test leaves under it is dropped afterwards (the cluster is shared)."""
    prefix = f"jt{uuid.uuid4().hex[:6]}_"
    yield prefix
    connections = AdminConnections(postgres_dsn)
    try:
        with connections.connection() as conn:
            names = [row[0] for row in conn.execute(
                "SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s)", (prefix,)).fetchall()]
        for name in names:
            revoke_role(connections, name, [])
    finally:
        connections.close()


def dsn_to_url(dsn: str) -> str:
    """A libpq key=value DSN as the ``postgresql://`` URL the broker's store setting takes."""
    parts = conninfo_to_dict(dsn)
    user = quote(str(parts.get("user", "")), safe="")
    password = quote(str(parts.get("password", "")), safe="")
    return (f"postgresql://{user}:{password}@{parts.get('host', '127.0.0.1')}:{parts.get('port', 5432)}/"
            f"{quote(str(parts['dbname']), safe='')}")


@pytest.fixture
def as_url() -> Callable[[str], str]:
    return dsn_to_url


@pytest.fixture
def postgres_proxy(postgres_dsn: str, tcp_proxy: Callable[[str, int], Any]) -> Any:
    """A proxy (tests/conftest.py ``TcpProxy``) in front of the shared cluster, listening."""
    settings = conninfo_to_dict(postgres_dsn)
    proxy = tcp_proxy(str(settings.get("host") or "127.0.0.1"), int(settings.get("port") or 5432))
    proxy.start()
    return proxy


@pytest.fixture
def via_proxy(postgres_proxy: Any) -> Callable[[str], str]:
    """Rewrite a DSN to go through the test's proxy."""
    return lambda dsn: make_conninfo(dsn, host="127.0.0.1", port=str(postgres_proxy.port))
