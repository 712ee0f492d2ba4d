"""``jitsec broker init --postgres DSN``: the config it writes loads, builds the PostgreSQL engine, and
lets ``demo-agent`` read every table of ``public`` in the DSN's database at once — a newcomer's first task."""

from __future__ import annotations

import tomllib
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner
from jitsec.broker.config import load_config
from jitsec.broker.engines.postgres import PostgresEngine
from jitsec.broker.engines.postgres_bootstrap import example_scope
from jitsec.broker.runtime import build_broker
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from jitsec.cli import main

pytestmark = pytest.mark.postgres


def test_init_with_postgres_writes_the_engine_and_the_demo_policy(tmp_path: Path) -> None:
    config = tmp_path / "broker.toml"
    dsn = "postgresql://admin@db.internal:5433/shop"
    result = CliRunner().invoke(main, ["broker", "init", "--config", str(config), "--postgres", dsn])
    assert result.exit_code == 0, result.output
    raw = tomllib.loads(config.read_text(encoding="utf-8"))
    assert raw["engines"]["postgres"]["admin_dsn"] == dsn
    demo = next(entry for entry in raw["policy"] if entry["agent"] == "demo-agent")
    assert demo["engines"]["postgres"]["scopes"] == ["postgres:shop:public.*:SELECT"]
    assert demo["engines"]["token"]["scopes"] == ["reports:read", "reports:write"]  # untouched
    loaded = load_config(config)
    assert loaded.engines["postgres"].kind == "postgres"


@pytest.mark.parametrize("dsn, message", [
    ("host=db.internal", "must name a database"),
    ("postgresql://a@h/db?nonsense=1", "not a valid PostgreSQL DSN"),
])
def test_init_refuses_a_bad_dsn_and_writes_nothing(tmp_path: Path, dsn: str, message: str) -> None:
    config = tmp_path / "broker.toml"
    result = CliRunner().invoke(main, ["broker", "init", "--config", str(config), "--postgres", dsn])
    assert result.exit_code != 0 and message in result.output
    assert not config.exists()


def test_odd_database_names_are_quoted_in_the_example_scope() -> None:
    assert example_scope("dbname='my db' host=x") == 'postgres:"my db":public.*:SELECT'


def test_a_fresh_config_gives_demo_agent_a_working_credential(
    tmp_path: Path, fresh_database: str, role_prefix: str
) -> None:
    with psycopg.connect(fresh_database, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS reports (id int); INSERT INTO reports VALUES (7)")
    config = tmp_path / "broker.toml"
    arguments = ["broker", "init", "--config", str(config), "--postgres", fresh_database]
    result = CliRunner().invoke(main, arguments)
    assert result.exit_code == 0, result.output
    text = config.read_text(encoding="utf-8")
    text = text.replace('role_prefix = "jitsec_"', f'role_prefix = "{role_prefix}"')  # this test's roles only
    config.write_text(text, encoding="utf-8")
    broker = build_broker(load_config(config))
    try:
        assert isinstance(broker.engines["postgres"], PostgresEngine)
        scope = example_scope(fresh_database)
        started = broker.service.start_task("orchestrator", "demo-agent", "first task", [scope])
        redeemed = broker.service.redeem(started.task.task_id, started.grant)
        caller = broker.service.authenticate_task_token(redeemed.token)
        issued = broker.service.issue(caller, "postgres", [scope])
        database = str(conninfo_to_dict(fresh_database)["dbname"])
        login = make_conninfo(fresh_database, dbname=database, user=issued.lease.username,
                              password=issued.secret)
        with psycopg.connect(login) as conn:
            assert conn.execute("SELECT id FROM reports").fetchall() == [(7,)]
        broker.service.complete_task(started.task.task_id, "orchestrator")
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(login, connect_timeout=5)
    finally:
        broker.close()
