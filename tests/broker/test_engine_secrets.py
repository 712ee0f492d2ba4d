"""Engine secrets out of the config in clear: ``NAME_file`` (0600 only), ``NAME_env``, ``NAME_sealed``
(token only); `jitsec broker init --postgres` never writes the admin password into the config; a
config that still holds it in its DSN keeps working, with a warning that does not repeat it."""

from __future__ import annotations

import logging
import stat
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner
from jitsec.broker.config import load_config
from jitsec.broker.custody.base import CustodyError, file_custody
from jitsec.broker.custody.engine_secrets import resolve_secret_options
from jitsec.broker.engines.postgres import PostgresEngine, PostgresEngineConfig
from jitsec.broker.runtime import build_broker

from jitsec.cli import main

CUSTODY = file_custody(b"k" * 32)


def test_a_private_file_is_read_and_a_shared_one_refused(tmp_path: Path) -> None:
    secret = tmp_path / "admin.password"
    secret.write_text("s3cret-value\n")
    secret.chmod(0o600)
    options = {"admin_dsn": "host=db dbname=app", "admin_password_from_file": "admin.password"}
    resolved = resolve_secret_options("postgres", options, CUSTODY, base_dir=tmp_path)
    assert resolved == {"admin_dsn": "host=db dbname=app", "admin_password": "s3cret-value"}
    secret.chmod(0o640)
    with pytest.raises(CustodyError, match=r"readable by others.*chmod 600"):
        resolve_secret_options("postgres", options, CUSTODY, base_dir=tmp_path)
    secret.unlink()
    with pytest.raises(CustodyError, match="cannot read"):
        resolve_secret_options("postgres", options, CUSTODY, base_dir=tmp_path)


def test_an_environment_variable_is_read_and_a_missing_one_named() -> None:
    options = {"admin_password_from_env": "PG_ADMIN_PASSWORD"}
    assert resolve_secret_options("postgres", options, CUSTODY, environ={"PG_ADMIN_PASSWORD": "v"}) == {
        "admin_password": "v"}
    with pytest.raises(CustodyError, match="PG_ADMIN_PASSWORD is not set"):
        resolve_secret_options("postgres", options, CUSTODY, environ={})


def test_one_secret_given_two_ways_is_refused() -> None:
    options = {"admin_password": "clear", "admin_password_from_env": "X"}
    with pytest.raises(CustodyError, match="given twice"):
        resolve_secret_options("postgres", options, CUSTODY, environ={"X": "y"})


def test_init_keeps_the_admin_password_out_of_the_config(tmp_path: Path) -> None:
    config = tmp_path / "broker.toml"
    dsn = "postgresql://admin:Pa55-w0rd@db.internal:5433/shop"
    result = CliRunner().invoke(main, ["broker", "init", "--config", str(config)],
                                env={"JITSEC_POSTGRES_ADMIN_DSN": dsn})
    assert result.exit_code == 0, result.output
    text = config.read_text()
    assert "Pa55-w0rd" not in text and "Pa55-w0rd" not in result.output
    section = tomllib.loads(text)["engines"]["postgres"]
    secret = tmp_path / section["admin_password_from_file"]
    assert secret.read_text().strip() == "Pa55-w0rd" and stat.S_IMODE(secret.stat().st_mode) == 0o600
    loaded = load_config(config)
    options = resolve_secret_options("postgres", loaded.engines["postgres"].settings.options, CUSTODY,
                                     base_dir=tmp_path)
    assert options["admin_password"] == "Pa55-w0rd" and "Pa55-w0rd" not in options["admin_dsn"]


def test_a_clear_text_admin_password_still_works_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "jitsec.broker.engines.postgres")
    engine = PostgresEngine(PostgresEngineConfig(admin_dsn="postgresql://admin:Old-Pa55@127.0.0.1:1/app"))
    try:
        assert "password" in engine._connections.conninfo()  # still used as before
        warning = " ".join(record.getMessage() for record in caplog.records)
        assert "in clear" in warning and "admin_password_from_file" in warning and "Old-Pa55" not in warning
    finally:
        engine.close()
    caplog.clear()
    quiet = PostgresEngine(PostgresEngineConfig(admin_dsn="host=127.0.0.1 port=1 dbname=app",
                                                admin_password="From-File"))
    try:
        assert "From-File" in quiet._connections.conninfo() and not caplog.records
        assert "From-File" not in repr(quiet.config)
    finally:
        quiet.close()


def test_an_engines_own_path_options_are_left_alone(tmp_path: Path) -> None:
    """sshd's KRL and Kafka's own password source are no secret files: a config `jitsec broker init`
    wrote builds its ssh engine."""
    kafka = {"admin_password_file": "/srv/kafka.pw", "admin_password_env": "KAFKA_PW", "ssl_ca_file": "ca"}
    for options in ({"ca_key": "/srv/ssh-ca", "krl_file": "/srv/revoked.krl"}, kafka):
        assert resolve_secret_options("engine", options, CUSTODY) == options
    config = tmp_path / "broker.toml"
    result = CliRunner().invoke(main, ["broker", "init", "--config", str(config)])
    assert result.exit_code == 0, result.output
    broker = build_broker(load_config(config))
    try:
        assert "ssh" in broker.engines
    finally:
        broker.close()
