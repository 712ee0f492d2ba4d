"""Fixtures for the PostgreSQL engine and store tests: a role prefix per test, and a loopback TCP proxy
that lets a test cut the broker off from PostgreSQL without disturbing the shared cluster (stop it:
"the database went away"; start it again on the same port: "it came back"). The databases themselves
(``fresh_database``, ``scratch_database``, ``as_url``) come from ``tests/conftest.py``, shared with the
store contract suite in ``tests/broker``."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from jitsec.broker.engines.postgres_connections import AdminConnections
from jitsec.broker.engines.postgres_roles import revoke_role
from psycopg.conninfo import conninfo_to_dict, make_conninfo


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
