"""The PostgreSQL started by scripts/services answers with password auth over loopback, as a superuser
that can create the per-test databases the broker's engine and store tests rely on."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg import sql

pytestmark = pytest.mark.postgres


def test_postgres_answers_as_a_superuser_on_loopback(postgres_dsn: str) -> None:
    assert "@127.0.0.1:" in postgres_dsn
    with psycopg.connect(postgres_dsn, connect_timeout=5) as conn:
        row = conn.execute("SELECT current_setting('server_version_num')::int, rolsuper "
                           "FROM pg_roles WHERE rolname = current_user").fetchone()
    assert row is not None
    version, is_superuser = row
    assert version >= 130000
    assert is_superuser is True


def test_postgres_lets_tests_create_and_drop_their_own_database(postgres_dsn: str) -> None:
    name = f"jitsec_smoke_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_dsn, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            dsn = psycopg.conninfo.make_conninfo(postgres_dsn, dbname=name)
            with psycopg.connect(dsn, connect_timeout=5) as other:
                assert other.execute("SELECT current_database()").fetchone() == (name,)
        finally:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
