"""A real deployment for the suite to test: the project's broker over loopback HTTP (uvicorn in a
thread), a SQLite store, the token, jwt, x509 and ssh engines, the PostgreSQL engine against the real
cluster (a fresh database and role prefix per test module), a policy with the conformance entry, and a
log file capturing the broker's loggers at DEBUG (8.5 searches it). ``kafka_deployment`` adds a kafka
engine on the real Kafka's SASL listener (a user prefix per test module, its users deleted after)."""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from jitsec.broker.api.app import create_app
from jitsec.broker.config import load_config
from jitsec.broker.engines.postgres_connections import AdminConnections
from jitsec.broker.engines.postgres_roles import revoke_role
from jitsec.broker.keys import key_hash, new_audit_key, new_principal_key
from jitsec.broker.loopback import LoopbackServer as Server
from jitsec.broker.runtime import Broker, build_broker

from jitsec.conformance.context import SecretLedger
from jitsec.conformance.model import Report
from jitsec.conformance.policy import KAFKA_SCOPE, SSH_SCOPE, X509_SCOPE
from jitsec.conformance.resources import GRANTED_TABLE, SCHEMA, PostgresTarget
from jitsec.conformance.runner import Suite
from jitsec.conformance.settings import PrincipalKeys, SuiteSettings
from jitsec.testing import fresh_postgres_database

ROLES = ("orchestrator", "scanner", "resource", "admin")


@dataclass
class Deployment:
    """A running broker and everything the suite needs to be pointed at it."""

    url: str
    config_path: Path
    keys: dict[str, str]
    log_path: Path
    postgres_dsn: str
    broker: Broker
    engines: dict[str, str] = field(default_factory=dict)  # the suite's engine settings for this broker

    def settings(self, tmp: Path, **overrides: Any) -> SuiteSettings:
        values: dict[str, Any] = {
            "broker_url": self.url,
            "keys": PrincipalKeys(self.keys["orchestrator"], self.keys["resource"], self.keys["scanner"]),
            "report_dir": tmp / "report",
            "config_path": self.config_path,
            "postgres_dsn": self.postgres_dsn,
            "broker_logs": (self.log_path,),
            "ttl_seconds": 2,
            "agents": 2,
            "tasks_per_agent": 2,
            "requests_per_task": 2,
            "leak_threshold_seconds": 10.0,
            "work_dir": tmp / "work",
            "x509_engine": "x509",
            "ssh_engine": "ssh",
        }
        values.update(self.engines)
        values.update(overrides)
        return SuiteSettings(**values)

    def run(self, tmp: Path, **overrides: Any) -> tuple[Report, SecretLedger]:
        suite = Suite(self.settings(tmp, **overrides))
        try:
            return suite.run(), suite.ledger
        finally:  # agent sandboxes and the leak file (it holds a dead token) go with the run
            shutil.rmtree(tmp / "work", ignore_errors=True)


@contextlib.contextmanager
def _database(postgres_dsn: str) -> Iterator[str]:
    with fresh_postgres_database(postgres_dsn, "jitsec_t_conformance") as dsn:
        yield dsn


def _drop_roles(postgres_dsn: str, prefix: str) -> None:
    connections = AdminConnections(postgres_dsn)
    try:
        with connections.connection() as conn:
            names = [
                row[0]
                for row in conn.execute(
                    "SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s)", (prefix,)
                ).fetchall()
            ]
        for name in names:
            revoke_role(connections, name, [])
    finally:
        connections.close()


@dataclass(frozen=True)
class KafkaSide:
    """The kafka engine's cluster: the SASL listener, its admin user, this module's user prefix."""

    bootstrap: str
    username: str
    password_file: Path
    user_prefix: str

    def engine_options(self) -> dict[str, Any]:
        return {"bootstrap_servers": self.bootstrap, "admin_username": self.username,
                "admin_password_file": str(self.password_file), "user_prefix": self.user_prefix,
                "scram_iterations": 4096, "max_ttl_seconds": 600, "default_ttl_seconds": 60}


def write_config(directory: Path, dsn: str, role_prefix: str,
                 kafka: KafkaSide | None = None) -> tuple[Path, dict[str, str]]:
    keys = {role: new_principal_key() for role in ROLES}
    database = PostgresTarget(dsn).database
    pg_scopes = [PostgresTarget(dsn).scope(GRANTED_TABLE, p) for p in ("SELECT", "INSERT")]
    raw = {
        "broker": {"store": f"sqlite://{directory / 'broker.db'}", "audit_key": new_audit_key()},
        "principals": [{"name": f"{r}-1", "role": r, "key_sha256": key_hash(keys[r])} for r in ROLES],
        "engines": {
            "token": {"default_ttl_seconds": 60, "max_ttl_seconds": 600},
            "jwt": {"keys": str(directory / "jwt-keys"), "max_ttl_seconds": 600},
            "postgres": {
                "admin_dsn": dsn,
                "role_prefix": role_prefix,
                "max_ttl_seconds": 600,
                "default_ttl_seconds": 60,
                "reconcile_grace_seconds": 600.0,
            },
            "x509": {"state_dir": str(directory / "x509"), "max_ttl_seconds": 600, "default_ttl_seconds": 60},
            "ssh": {"ca_key": str(directory / "ssh" / "ca"), "max_ttl_seconds": 600,
                    "krl_file": str(directory / "ssh" / "revoked.krl"), "default_ttl_seconds": 60},
        },
        "policy": [
            {
                "agent": "conformance-*",
                "max_task_ttl_seconds": 900,
                "engines": {
                    "token": {"scopes": ["conformance:read", "conformance:write"], "max_ttl_seconds": 600},
                    "jwt": {"scopes": ["conformance:read"], "max_ttl_seconds": 600},
                    "postgres": {"scopes": pg_scopes, "max_ttl_seconds": 600},
                    "x509": {"scopes": [X509_SCOPE], "max_ttl_seconds": 600},
                    "ssh": {"scopes": [SSH_SCOPE], "max_ttl_seconds": 600},
                },
            }
        ],
        "reaper": {"max_sleep_seconds": 0.05},
    }
    if kafka is not None:
        raw["engines"]["kafka"] = kafka.engine_options()
        raw["policy"][0]["engines"]["kafka"] = {"scopes": [KAFKA_SCOPE], "max_ttl_seconds": 600}
    assert database
    path = directory / "broker.toml"
    path.write_text(tomli_w.dumps(raw), encoding="utf-8")
    path.chmod(0o600)
    return path, keys


@contextlib.contextmanager
def _serve(postgres_dsn: str, directory: Path, kafka: KafkaSide | None = None) -> Iterator[Deployment]:
    prefix = f"jc{uuid.uuid4().hex[:6]}_"
    with _database(postgres_dsn) as dsn:
        PostgresTarget(dsn).ensure_fixture()
        config_path, keys = write_config(directory, dsn, prefix, kafka)
        log_path = directory / "broker.log"
        handler = logging.FileHandler(log_path, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler.setLevel(logging.DEBUG)
        loggers = [logging.getLogger(name) for name in ("jitsec", "uvicorn", "httpx")]
        previous = [(logger.level, logger.propagate) for logger in loggers]
        for logger in loggers:  # the broker's log goes to its file only (a broken broker's too)
            logger.addHandler(handler)
            logger.setLevel(logging.DEBUG)
            logger.propagate = False
        broker = build_broker(load_config(config_path))
        server = Server(create_app(broker)).start()
        engines = {} if kafka is None else {"kafka_engine": "kafka", "kafka_bootstrap": kafka.bootstrap}
        try:
            yield Deployment(server.url, config_path, keys, log_path, dsn, broker, engines)
        finally:
            server.stop()
            broker.close()
            for logger, (level, propagate) in zip(loggers, previous, strict=True):
                logger.removeHandler(handler)
                logger.setLevel(level)
                logger.propagate = propagate
            handler.close()
            _drop_roles(postgres_dsn, prefix)
            # A deliberately broken broker (8.5's test) logged plaintext secrets: leave no file behind.
            shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def deployment(postgres_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    with _serve(postgres_dsn, tmp_path_factory.mktemp("deployment")) as served:
        yield served


@pytest.fixture(scope="module")
def kafka_deployment(postgres_dsn: str, kafka_sasl: tuple[str, str, str],
                     tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """The deployment with a kafka engine too; the users it made are deleted afterwards (shared cluster)."""
    from jitsec.broker.engines.kafka_admin import KafkaAdmin  # noqa: PLC0415 - confluent-kafka, here only

    bootstrap, username, password = kafka_sasl
    directory = tmp_path_factory.mktemp("kafka-deployment")
    password_file = directory / "kafka-admin-password"
    password_file.write_text(password, encoding="utf-8")
    password_file.chmod(0o600)
    kafka = KafkaSide(bootstrap, username, password_file, f"jck{uuid.uuid4().hex[:6]}_")
    with _serve(postgres_dsn, directory, kafka) as served:
        yield served
    admin = KafkaAdmin({"bootstrap.servers": bootstrap, "security.protocol": "SASL_PLAINTEXT",
                        "sasl.mechanism": "PLAIN", "sasl.username": username, "sasl.password": password},
                       timeout_seconds=30)
    try:
        for user in admin.users():
            if user.startswith(kafka.user_prefix):
                admin.delete_user(user)
    finally:
        admin.close()


@pytest.fixture
def wait() -> Callable[[Callable[[], bool], float], bool]:
    def until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.02)
        return predicate()

    return until


__all__ = ["GRANTED_TABLE", "SCHEMA"]
