"""The reconciler drops roles no live lease backs (a crash between issue and store), keeps the rest,
runs at start and then once per interval, and only in the process that holds the reaper lock."""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg
import pytest
from jitsec.broker.engines.base import IssueRequest
from jitsec.broker.engines.postgres import PostgresEngine, PostgresEngineConfig
from jitsec.broker.engines.postgres_reconciler import Reconciler
from jitsec.broker.engines.token import TokenEngine
from jitsec.broker.model import AuditEvent, AuditKind, Lease
from jitsec.broker.store.postgres import PostgresStore
from psycopg.conninfo import conninfo_to_dict

from jitsec.testing import ManualClock

pytestmark = pytest.mark.postgres




@pytest.fixture
def database(fresh_database: str) -> str:
    with psycopg.connect(fresh_database, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS a (x int)")
    return str(conninfo_to_dict(fresh_database)["dbname"])


@pytest.fixture
def engine(postgres_dsn: str, role_prefix: str) -> Iterator[PostgresEngine]:
    engine = PostgresEngine(PostgresEngineConfig(admin_dsn=postgres_dsn, role_prefix=role_prefix,
                                                 reconcile_grace_seconds=0))
    yield engine
    engine.close()


@pytest.fixture
def stores(scratch_database: str) -> Iterator[tuple[PostgresStore, PostgresStore]]:
    first, second = PostgresStore(scratch_database, b"k" * 32), PostgresStore(scratch_database, b"k" * 32)
    first.migrate()
    yield first, second
    first.close()
    second.close()


def issue(engine: PostgresEngine, database: str, lease_id: str) -> tuple[IssueRequest, str, str]:
    request = IssueRequest(lease_id=lease_id, agent="agent", task_id="tsk_1", task_name="task",
                           scopes=(f"postgres:{database}:public.a:SELECT",), ttl_seconds=600,
                           expires_at=time.time() + 600)
    credential = engine.issue(request)
    return request, credential.handle, credential.username or ""


def roles(postgres_dsn: str, prefix: str) -> set[str]:
    with psycopg.connect(postgres_dsn) as conn:
        return {r[0] for r in conn.execute("SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s)",
                                           (prefix,)).fetchall()}


def test_orphans_go_live_roles_stay_and_only_the_reaper_lock_holder_reconciles(
    engine: PostgresEngine, stores: tuple[PostgresStore, PostgresStore], database: str, postgres_dsn: str,
) -> None:
    store, other_process = stores
    request, live_handle, live_role = issue(engine, database, "lse_live")
    store.add_lease(Lease(lease_id="lse_live", task_id="tsk_1", agent="agent", engine="postgres",
                          scopes=request.scopes, issued_at=time.time(), expires_at=request.expires_at,
                          fingerprint="f" * 64, handle=live_handle, username=live_role),
                    AuditEvent(kind=AuditKind.ISSUE, at=time.time()))
    _, _, orphan_role = issue(engine, database, "lse_never_stored")
    clock = ManualClock()
    engines = {"postgres": engine, "token": TokenEngine()}

    assert other_process.try_acquire_reaper_lock() is True
    assert Reconciler(store, engines, interval_seconds=60, clock=clock).tick() is None  # not the reaper
    assert roles(postgres_dsn, engine.config.role_prefix) == {live_role, orphan_role}
    other_process.close()

    reconciler = Reconciler(store, engines, interval_seconds=60, clock=clock)
    assert reconciler.tick() == {"postgres": 1}  # at start
    assert roles(postgres_dsn, engine.config.role_prefix) == {live_role}
    _, _, later_orphan = issue(engine, database, "lse_later")
    clock.now += 30
    assert reconciler.tick() is None  # not due yet
    clock.now += 31
    assert reconciler.tick() == {"postgres": 1}
    assert roles(postgres_dsn, engine.config.role_prefix) == {live_role}
    assert later_orphan not in roles(postgres_dsn, engine.config.role_prefix)
