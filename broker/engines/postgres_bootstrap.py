"""What ``jitsec broker init --postgres DSN`` adds to a fresh config: the ``[engines.postgres]`` section
for that cluster and, in the example policy, ``demo-agent`` may hold ``postgres:<database>:public.*:SELECT``
on the DSN's database. Pure text rendering; nothing connects to PostgreSQL here."""

from __future__ import annotations

import json

import psycopg
from jitsec.broker.engines.postgres_naming import DEFAULT_ROLE_PREFIX
from jitsec.broker.engines.postgres_scope import PostgresScope, Privilege
from jitsec.broker.engines.postgres_scram import DEFAULT_ITERATIONS
from psycopg.conninfo import conninfo_to_dict, make_conninfo


def database_of(dsn: str) -> str:
    """The database a DSN names; a clear ValueError when the DSN is malformed or names none."""
    try:
        database = conninfo_to_dict(dsn).get("dbname")
    except psycopg.ProgrammingError as error:
        reason = str(error).strip().replace("\n", " ")
        raise ValueError(f"--postgres: not a valid PostgreSQL DSN or URL ({reason})") from None
    if not database:
        raise ValueError("--postgres: the DSN must name a database (postgresql://user@host:5432/DBNAME)")
    return str(database)


def example_scope(dsn: str) -> str:
    return PostgresScope(database_of(dsn), "public", None, Privilege.SELECT).render()


def without_password(dsn: str) -> tuple[str, str | None]:
    """The DSN with its password taken out (as ``key=value`` conninfo), and the password (None if none)."""
    database_of(dsn)  # a clear error for a malformed DSN
    parts = conninfo_to_dict(dsn)
    password = parts.pop("password", None)
    if password is None:
        return dsn, None
    rest = {key: value for key, value in parts.items() if value is not None}
    return make_conninfo("", **rest), str(password)


def engine_section(dsn: str, password_line: str = "") -> str:
    """``dsn`` holds no password; ``password_line`` says where it is (``admin_password_sealed = …``)."""
    return f"""\
[engines.postgres]                   # one LOGIN role per lease (docs/postgres.md)
# admin: a role with CREATEROLE (a superuser is simplest); its password is never written here in clear
admin_dsn = {json.dumps(dsn)}
{password_line}default_ttl_seconds = 300
max_ttl_seconds = 3600               # VALID UNTIL = the lease's expiry: holds even with the broker down
connection_limit = 5                 # per credential
role_prefix = "{DEFAULT_ROLE_PREFIX}"              # reserved: the reconciler drops orphans with it
allow_schema_wide = true             # "<schema>.*" scopes (policy must still list them)
connect_timeout_seconds = 5.0
reconcile_grace_seconds = 120.0      # the reconciler spares roles younger than this
scram_iterations = {DEFAULT_ITERATIONS}               # the password goes as a SCRAM verifier, never in clear
# public_host = "db.internal"        # host/port returned to agents (default: the admin DSN's)
# public_port = 5432
"""


def policy_section(dsn: str) -> str:
    return f"""\
[policy.engines.postgres]
scopes = [{json.dumps(example_scope(dsn))}]
default_ttl_seconds = 300
max_ttl_seconds = 900
"""
