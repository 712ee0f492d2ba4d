"""The PostgreSQL engine against the real cluster: exactly the requested privileges, expiry that
holds without the broker, revocation that ends open sessions, hostile names that stay names, and no
role left behind by a failed issue."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import psycopg
import pytest
from jitsec.broker.engines.base import IssuedCredential, IssueRequest, RevokeOutcome
from jitsec.broker.engines.postgres import PostgresEngine, PostgresEngineConfig, RoleHandle
from jitsec.broker.errors import ScopeError, TransientEngineError
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from jitsec.kernel.credential_format import CredentialKind, parse

pytestmark = pytest.mark.postgres

HOSTILE_SCHEMA = 'we"ird; DROP TABLE public.a;--'
HOSTILE_TABLE = "tä\"ble'); DROP ROLE x;--" + "ü" * 18  # 63 bytes in UTF-8
HOSTILE_AGENT = "agent'; DROP DATABASE postgres;--\"ö"
HOSTILE_TASK = 'task"); SELECT pg_sleep(10);-- ' + "日本" * 20


@pytest.fixture(scope="module")
def database(fresh_database: str) -> str:
    with psycopg.connect(fresh_database, autocommit=True) as conn:
        conn.execute("CREATE TABLE a (x int); INSERT INTO a VALUES (1), (2); CREATE TABLE b (y int)")
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(HOSTILE_SCHEMA)))
        hostile = sql.Identifier(HOSTILE_SCHEMA, HOSTILE_TABLE)
        conn.execute(sql.SQL("CREATE TABLE {} (z text)").format(hostile))
        conn.execute(sql.SQL("INSERT INTO {} VALUES ('ok')").format(hostile))
    return str(conninfo_to_dict(fresh_database)["dbname"])


@pytest.fixture
def make_engine(postgres_dsn: str, role_prefix: str) -> Iterator[Callable[..., PostgresEngine]]:
    engines: list[PostgresEngine] = []

    def build(admin_dsn: str = postgres_dsn, **options: object) -> PostgresEngine:
        config = PostgresEngineConfig(admin_dsn=admin_dsn, role_prefix=role_prefix, **options)  # type: ignore[arg-type]
        engines.append(PostgresEngine(config))
        return engines[-1]

    yield build
    for engine in engines:
        engine.close()


@pytest.fixture
def engine(make_engine: Callable[..., PostgresEngine]) -> PostgresEngine:
    return make_engine()


def request_for(*scopes: str, ttl: float = 60, agent: str = "agent-1", task: str = "task-1",
                lease: str | None = None) -> IssueRequest:
    return IssueRequest(lease_id=lease or f"lease_{time.monotonic_ns()}", agent=agent, task_id="tsk_x1",
                        task_name=task, scopes=scopes, ttl_seconds=int(ttl), expires_at=time.time() + ttl)


def login(postgres_dsn: str, database: str, credential: IssuedCredential) -> psycopg.Connection:
    dsn = make_conninfo(postgres_dsn, dbname=database, user=credential.username, password=credential.secret)
    return psycopg.connect(dsn, autocommit=True, connect_timeout=5)


def roles_with_prefix(postgres_dsn: str, prefix: str) -> list[str]:
    with psycopg.connect(postgres_dsn) as conn:
        return [r[0] for r in conn.execute("SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s)",
                                           (prefix,)).fetchall()]


def test_select_on_a_reads_a_and_is_refused_b_and_insert(
    engine: PostgresEngine, postgres_dsn: str, database: str
) -> None:
    credential = engine.issue(request_for(f"postgres:{database}:public.a:SELECT"))
    parsed = parse(credential.secret)
    assert parsed is not None and parsed.kind is CredentialKind.POSTGRES_PASSWORD
    assert credential.details["database"] == database
    with login(postgres_dsn, database, credential) as conn:
        assert conn.execute("SELECT x FROM a ORDER BY x").fetchall() == [(1,), (2,)]
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM b")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("INSERT INTO a VALUES (3)")


def test_the_role_stores_a_scram_verifier_an_expiry_and_a_connection_limit(
    make_engine: Callable[..., PostgresEngine], postgres_dsn: str, database: str
) -> None:
    engine = make_engine(connection_limit=1)
    request = request_for(f"postgres:{database}:public.a:SELECT", ttl=120)
    credential = engine.issue(request)
    with psycopg.connect(postgres_dsn) as admin:
        password, until, limit = admin.execute(
            "SELECT rolpassword, extract(epoch FROM rolvaliduntil), rolconnlimit FROM pg_authid"
            " WHERE rolname = %s",
            (credential.username,)).fetchone()
    assert password.startswith("SCRAM-SHA-256$256:") and credential.secret not in password
    assert abs(float(until) - request.expires_at) < 1
    assert limit == 1
    with login(postgres_dsn, database, credential), pytest.raises(psycopg.OperationalError, match="too many"):
        login(postgres_dsn, database, credential)


def test_revocation_ends_open_sessions_and_refuses_new_logins(
    engine: PostgresEngine, postgres_dsn: str, database: str
) -> None:
    credential = engine.issue(request_for(f"postgres:{database}:public.a:SELECT"))
    session = login(postgres_dsn, database, credential)
    assert session.execute("SELECT count(*) FROM a").fetchone() == (2,)
    assert engine.revoke(credential.handle) is RevokeOutcome.REVOKED
    with pytest.raises(psycopg.OperationalError):
        session.execute("SELECT count(*) FROM a")
    session.close()
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        login(postgres_dsn, database, credential)
    assert roles_with_prefix(postgres_dsn, engine.config.role_prefix) == []
    assert engine.revoke(credential.handle) is RevokeOutcome.ALREADY_GONE


def test_a_busy_session_is_terminated_mid_query(
    engine: PostgresEngine, postgres_dsn: str, database: str
) -> None:
    credential = engine.issue(request_for(f"postgres:{database}:public.a:SELECT"))
    session = login(postgres_dsn, database, credential)
    outcome: list[BaseException] = []

    def long_query() -> None:
        try:
            session.execute("SELECT pg_sleep(30)")
        except BaseException as error:
            outcome.append(error)

    worker = threading.Thread(target=long_query)
    worker.start()
    time.sleep(0.3)
    engine.revoke(credential.handle)
    worker.join(10)
    assert not worker.is_alive()
    assert outcome and isinstance(outcome[0], psycopg.OperationalError)
    session.close()


def test_valid_until_refuses_logins_after_expiry_without_any_revocation(
    engine: PostgresEngine, postgres_dsn: str, database: str
) -> None:
    credential = engine.issue(request_for(f"postgres:{database}:public.a:SELECT", ttl=3))
    with login(postgres_dsn, database, credential) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    time.sleep(3.5)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        login(postgres_dsn, database, credential)


def test_hostile_names_reach_sql_only_as_quoted_identifiers(
    make_engine: Callable[..., PostgresEngine], postgres_dsn: str, database: str, fresh_database: str
) -> None:
    engine = make_engine()
    scope = f'postgres:{database}:"{HOSTILE_SCHEMA.replace(chr(34), chr(34) * 2)}".' \
            f'"{HOSTILE_TABLE.replace(chr(34), chr(34) * 2)}":SELECT'
    with psycopg.connect(fresh_database) as admin:
        tables_before = admin.execute("SELECT count(*) FROM pg_tables").fetchone()
    credential = engine.issue(request_for(scope, agent=HOSTILE_AGENT, task=HOSTILE_TASK))
    assert credential.username is not None
    # The name keeps the hostile characters (quoted, never sanitised) and is cut to 63 bytes.
    assert credential.username.startswith(engine.config.role_prefix + "agent'; DROP DATABASE")
    assert 'task"); SELECT' not in credential.username and "_tsk_x1_" in credential.username  # id, not name
    assert len(credential.username.encode("utf-8")) <= 63
    # The role exists under exactly the hostile name, and nothing the names "said" happened.
    assert roles_with_prefix(postgres_dsn, engine.config.role_prefix) == [credential.username]
    with psycopg.connect(fresh_database) as admin:
        assert admin.execute("SELECT count(*) FROM pg_tables").fetchone() == tables_before
        assert admin.execute("SELECT count(*) FROM public.a").fetchone() == (2,)
        assert admin.execute("SELECT 1 FROM pg_database WHERE datname = 'postgres'").fetchone() == (1,)
    with login(postgres_dsn, database, credential) as conn:
        rows = conn.execute(sql.SQL("SELECT z FROM {}").format(sql.Identifier(HOSTILE_SCHEMA, HOSTILE_TABLE)))
        assert rows.fetchall() == [("ok",)]
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM public.a")
    assert engine.revoke(credential.handle) is RevokeOutcome.REVOKED
    assert roles_with_prefix(postgres_dsn, engine.config.role_prefix) == []


@pytest.mark.parametrize("scope_template, message", [
    ("postgres:{db}:public.missing:SELECT", 'relation "public.missing" does not exist'),
    ("postgres:{db}:nosuchschema.*:SELECT", 'schema "nosuchschema" does not exist'),
    ("postgres:jitsec_no_such_database:public.a:SELECT", "database 'jitsec_no_such_database' does not exist"),
])
def test_a_missing_object_is_a_clear_error_and_leaves_no_role(
    engine: PostgresEngine, postgres_dsn: str, database: str, scope_template: str, message: str
) -> None:
    scopes = (f"postgres:{database}:public.a:SELECT", scope_template.format(db=database))
    if "no_such_database" in scope_template:
        scopes = scopes[1:]
    with pytest.raises(ScopeError, match=message):
        engine.issue(request_for(*scopes))
    assert roles_with_prefix(postgres_dsn, engine.config.role_prefix) == []


@pytest.mark.parametrize("scope, message", [
    ("postgres:{db}:public.a:DROP", "unknown privilege 'DROP'"),
    ("postgres:{db}:public.a:SELECT; DROP TABLE a", "trailing text|unknown privilege"),
    ("postgres:other_db:public.a:SELECT", "one database"),
    ('postgres:{db}:"public".a:SELECT', "canonical form; write it as 'postgres:.*:public.a:SELECT'"),
])
def test_unknown_privileges_and_mixed_databases_are_refused_before_sql(
    engine: PostgresEngine, postgres_dsn: str, database: str, scope: str, message: str
) -> None:
    scopes = (f"postgres:{database}:public.b:SELECT", scope.format(db=database))
    with pytest.raises(ScopeError, match=message):
        engine.validate_scopes(scopes)
    with pytest.raises(ScopeError, match=message):
        engine.issue(request_for(*scopes))
    assert roles_with_prefix(postgres_dsn, engine.config.role_prefix) == []


def test_schema_wide_select_reads_every_table_and_writes_none(
    engine: PostgresEngine, postgres_dsn: str, database: str
) -> None:
    credential = engine.issue(request_for(f"postgres:{database}:public.*:SELECT"))
    with login(postgres_dsn, database, credential) as conn:
        assert conn.execute("SELECT count(*) FROM a").fetchone() == (2,)
        assert conn.execute("SELECT count(*) FROM b").fetchone() == (0,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("INSERT INTO b VALUES (1)")


def test_schema_wide_grants_can_be_switched_off(
    make_engine: Callable[..., PostgresEngine], database: str
) -> None:
    engine = make_engine(allow_schema_wide=False)
    with pytest.raises(ScopeError, match="schema-wide"):
        engine.validate_scopes([f"postgres:{database}:public.*:SELECT"])


def test_reconcile_drops_orphans_and_spares_live_and_young_roles(
    make_engine: Callable[..., PostgresEngine], postgres_dsn: str, database: str
) -> None:
    engine = make_engine(reconcile_grace_seconds=0)
    live = engine.issue(request_for(f"postgres:{database}:public.a:SELECT"))
    orphan = engine.issue(request_for(f"postgres:{database}:public.b:SELECT"))
    with login(postgres_dsn, database, orphan) as session:
        assert engine.reconcile([live.handle]) == 1
        with pytest.raises(psycopg.OperationalError):
            session.execute("SELECT 1")
    assert roles_with_prefix(postgres_dsn, engine.config.role_prefix) == [live.username]
    patient = make_engine(reconcile_grace_seconds=3600)
    patient.issue(request_for(f"postgres:{database}:public.b:SELECT"))
    assert patient.reconcile([]) == 0


def test_reconcile_ignores_roles_without_the_brokers_mark(
    make_engine: Callable[..., PostgresEngine], postgres_dsn: str, role_prefix: str
) -> None:
    name = f"{role_prefix}made_by_a_human"
    with psycopg.connect(postgres_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(name)))
    assert make_engine(reconcile_grace_seconds=0).reconcile([]) == 0
    assert roles_with_prefix(postgres_dsn, role_prefix) == [name]


def test_database_down_is_transient_for_issue_and_revoke_and_revocation_finishes_after(
    make_engine: Callable[..., PostgresEngine], postgres_proxy, via_proxy: Callable[[str], str],
    postgres_dsn: str, database: str,
) -> None:
    engine = make_engine(admin_dsn=via_proxy(postgres_dsn), connect_timeout_seconds=2)
    credential = engine.issue(request_for(f"postgres:{database}:public.a:SELECT"))
    postgres_proxy.stop()
    with pytest.raises(TransientEngineError):
        engine.issue(request_for(f"postgres:{database}:public.a:SELECT"))
    with pytest.raises(TransientEngineError):
        engine.revoke(credential.handle)
    with login(postgres_dsn, database, credential) as conn:  # NOLOGIN never reached the server
        assert conn.execute("SELECT 1").fetchone() == (1,)
    postgres_proxy.start()
    assert engine.revoke(credential.handle) is RevokeOutcome.REVOKED
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        login(postgres_dsn, database, credential)
    assert roles_with_prefix(postgres_dsn, engine.config.role_prefix) == []


def test_handles_are_json_naming_role_and_database(engine: PostgresEngine, database: str) -> None:
    credential = engine.issue(request_for(f"postgres:{database}:public.a:SELECT"))
    assert RoleHandle.decode(credential.handle) == RoleHandle(credential.username or "", database)
    assert credential.secret not in credential.handle and credential.secret not in repr(credential)


def test_concurrent_revokers_of_one_role_all_succeed(
    make_engine: Callable[..., PostgresEngine], postgres_dsn: str, database: str
) -> None:
    engines = [make_engine() for _ in range(4)]
    credential = engines[0].issue(request_for(f"postgres:{database}:public.a:SELECT"))
    outcomes: list[object] = []
    barrier = threading.Barrier(len(engines))

    def revoke(engine: PostgresEngine) -> None:
        barrier.wait()
        try:
            outcomes.append(engine.revoke(credential.handle))
        except Exception as error:
            outcomes.append(error)

    threads = [threading.Thread(target=revoke, args=(engine,)) for engine in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(outcomes) == 4
    assert set(outcomes) <= {RevokeOutcome.REVOKED, RevokeOutcome.ALREADY_GONE}, outcomes
    assert roles_with_prefix(postgres_dsn, engines[0].config.role_prefix) == []


@pytest.mark.parametrize("iterations", [1, 4096])
def test_the_client_side_scram_verifier_logs_in_at_any_iteration_count(
    make_engine: Callable[..., PostgresEngine],
    postgres_dsn: str,
    database: str,
    iterations: int,
    last_character_changed: Callable[[str], str],
) -> None:
    engine = make_engine(scram_iterations=iterations)
    credential = engine.issue(request_for(f"postgres:{database}:public.a:SELECT"))
    with login(postgres_dsn, database, credential) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (credential.username,)
    wrong = IssuedCredential(secret=last_character_changed(credential.secret), username=credential.username)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        login(postgres_dsn, database, wrong)


def test_revocation_drops_what_the_lease_created_and_never_hands_it_to_the_admin(
    engine: PostgresEngine, postgres_dsn: str, scratch_database: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Where PUBLIC may CREATE (the default before PostgreSQL 15), a lease scoped to SELECT on one table
    plants a SECURITY DEFINER function and a view; after revocation neither may exist, let alone be
    owned by the admin (whose privileges the function would then lend to anyone)."""
    database = str(conninfo_to_dict(scratch_database)["dbname"])
    with psycopg.connect(scratch_database, autocommit=True) as conn:
        conn.execute("CREATE TABLE reports (x int); CREATE TABLE payroll (salary int); "
                     "INSERT INTO payroll VALUES (100000); GRANT CREATE ON SCHEMA public TO PUBLIC")
    credential = engine.issue(request_for(f"postgres:{database}:public.reports:SELECT"))
    assert "PUBLIC may CREATE in schema(s) public" in caplog.text  # said loudly, once per database
    with login(postgres_dsn, database, credential) as agent:
        agent.execute("CREATE FUNCTION public.lend() RETURNS SETOF int LANGUAGE sql SECURITY DEFINER "
                      "AS 'SELECT salary FROM public.payroll'")
        agent.execute("CREATE VIEW public.peek AS SELECT x FROM public.reports")
    assert engine.revoke(credential.handle) is RevokeOutcome.REVOKED
    with psycopg.connect(scratch_database, autocommit=True) as conn:
        left = conn.execute("SELECT count(*) FROM pg_proc WHERE proname = 'lend'").fetchone()
        views = conn.execute("SELECT count(*) FROM pg_views WHERE viewname = 'peek'").fetchone()
        assert left == (0,) and views == (0,)
        assert conn.execute("SELECT count(*) FROM payroll").fetchone() == (1,)  # the admin's data stays


def test_the_postgres_engine_keeps_the_engine_contract(
    engine: PostgresEngine, database: str, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.broker.engine_contract import ContractCase, check_engine_contract  # noqa: PLC0415

    case = ContractCase(engine=engine, scopes=(f"postgres:{database}:public.a:SELECT",),
                        bad_scopes=("postgres:nodb",), stateful_revoke=True, issues=3)
    check_engine_contract(case, caplog)
