"""What the suite is pointed at and how hard it pushes: keys, targets, sizes, thresholds.

Principal keys never come from the command line (shell history, ``ps``): from environment variables,
or from the JSON that ``jitsec broker init --json`` printed, saved to a private file. The PostgreSQL
DSN may hold a password, so it is hidden from ``repr`` and the report shows only host, port and
database.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ORCHESTRATOR_KEY_ENV = "JITSEC_ORCHESTRATOR_KEY"
RESOURCE_KEY_ENV = "JITSEC_RESOURCE_KEY"
SCANNER_KEY_ENV = "JITSEC_BROKER_KEY"  # the same variable the scanning commands read
ADMIN_KEY_ENV = "JITSEC_ADMIN_KEY"
KEYS_FILE_ENV = "JITSEC_CONFORMANCE_KEYS"

TEST_IDS = ("8.1", "8.2", "8.3", "8.4", "8.5", "8.6", "8.7")
MEMORY_DUMPS = ("auto", "gcore", "proc-mem", "none")


class SettingsError(ValueError):
    """The suite cannot start: a key, a target or a size is missing or wrong; the message says which."""


@dataclass(frozen=True, slots=True)
class PrincipalKeys:
    """The broker principals the suite acts as. The orchestrator starts and completes tasks; the
    resource principal (or admin) introspects tokens; the scanner principal feeds a watcher the suite
    starts itself (8.7)."""

    orchestrator: str = field(repr=False)
    resource: str = field(repr=False)
    scanner: str | None = field(default=None, repr=False)

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None, keys_file: Path | None = None) -> PrincipalKeys:
        """Environment variables first, then the ``broker init --json`` file (``keys`` by role)."""
        env = os.environ if env is None else env
        from_file: dict[str, str] = {}
        path = keys_file or (Path(env[KEYS_FILE_ENV]) if env.get(KEYS_FILE_ENV) else None)
        if path is not None:
            from_file = _read_keys_file(path)
        orchestrator = env.get(ORCHESTRATOR_KEY_ENV) or from_file.get("orchestrator")
        resource = env.get(RESOURCE_KEY_ENV) or from_file.get("resource")
        admin = env.get(ADMIN_KEY_ENV) or from_file.get("admin")
        scanner = env.get(SCANNER_KEY_ENV) or from_file.get("scanner")
        if not orchestrator:
            raise SettingsError(
                f"no orchestrator key: set ${ORCHESTRATOR_KEY_ENV}, or pass --keys-file with the JSON "
                "that `jitsec broker init --json` printed"
            )
        if not (resource or admin):
            raise SettingsError(
                f"no key that may introspect tokens: set ${RESOURCE_KEY_ENV} (or ${ADMIN_KEY_ENV}), "
                "or pass --keys-file"
            )
        return cls(orchestrator=orchestrator, resource=resource or admin or "", scanner=scanner)


def _read_keys_file(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SettingsError(f"keys file {path} does not exist") from None
    except (OSError, ValueError) as error:
        raise SettingsError(f"keys file {path} is not readable JSON ({type(error).__name__})") from None
    keys = data.get("keys") if isinstance(data, dict) else None
    if not isinstance(keys, dict) or not all(isinstance(v, str) for v in keys.values()):
        raise SettingsError(f'keys file {path} has no "keys" object of role -> key (broker init --json)')
    return keys


@dataclass(frozen=True, slots=True)
class LeakTarget:
    """Where 8.7 plants its credential: a file a watcher tails, or a Kafka topic one consumes."""

    kind: str  # "file" or "kafka"
    path: Path | None = None
    bootstrap: str = ""
    topic: str = ""

    @classmethod
    def parse(cls, text: str) -> LeakTarget:
        if text.startswith("file:"):
            path = text.removeprefix("file:")
            if not path:
                raise SettingsError("--leak-target file: needs a path (file:/var/log/agent.log)")
            return cls(kind="file", path=Path(path))
        if text.startswith("kafka://"):
            parts = urlsplit(text)
            topic = parts.path.strip("/")
            if not parts.netloc or not topic or "/" in topic:
                raise SettingsError(
                    "--leak-target kafka:// needs host:port and one topic (kafka://h:9092/logs)"
                )
            return cls(kind="kafka", bootstrap=parts.netloc, topic=topic)
        raise SettingsError(f"--leak-target {text!r}: use file:PATH or kafka://HOST:PORT/TOPIC")

    def describe(self) -> str:
        return f"file:{self.path}" if self.kind == "file" else f"kafka://{self.bootstrap}/{self.topic}"


@dataclass(frozen=True, slots=True)
class SuiteSettings:
    """Everything one run needs. Sizes and times default small so that the suite takes seconds."""

    broker_url: str
    keys: PrincipalKeys
    report_dir: Path
    config_path: Path | None = None  # the broker's config: store, audit and logs become reachable
    postgres_dsn: str | None = field(default=None, repr=False)
    leak_target: LeakTarget | None = None
    start_watcher: bool | None = None  # None: start one when no leak target is given
    broker_logs: tuple[Path, ...] = ()
    agent_prefix: str = "conformance-"
    ttl_seconds: int = 3
    lateness_seconds: float = 1.0
    immediate_seconds: float = 1.0
    agents: int = 3
    tasks_per_agent: int = 2
    requests_per_task: int = 3
    leak_threshold_seconds: float = 5.0
    memory_dump: str = "auto"
    only: tuple[str, ...] = ()
    agent_command: tuple[str, ...] = (sys.executable, "-m", "jitsec.conformance.agent")
    work_dir: Path | None = None  # where agent sandboxes live (default: a temporary directory)
    x509_engine: str | None = None  # an x509 engine's name: 8.2 also holds a client certificate
    ssh_engine: str | None = None  # an ssh engine's name: 8.2 also holds an SSH certificate
    kafka_engine: str | None = None  # a kafka engine's name: 8.2 also holds a SCRAM user
    kafka_bootstrap: str | None = None  # the SASL listener 8.2 logs in to (default: the lease's own)

    def __post_init__(self) -> None:
        if not self.broker_url.startswith(("http://", "https://")):
            raise SettingsError(f"--broker {self.broker_url!r} is not an http(s):// URL")
        if self.ttl_seconds < 1 or self.lateness_seconds <= 0 or self.immediate_seconds < 0:
            raise SettingsError("ttl must be >= 1 s and the lateness allowance positive")
        if min(self.agents, self.tasks_per_agent, self.requests_per_task) < 1:
            raise SettingsError("agents, tasks per agent and requests per task must be at least 1")
        if self.agents * self.tasks_per_agent * self.requests_per_task > 10_000:
            raise SettingsError("at most 10,000 secrets in the uniqueness test")
        if self.leak_threshold_seconds <= 0:
            raise SettingsError("the leak threshold must be positive")
        if self.memory_dump not in MEMORY_DUMPS:
            raise SettingsError(f"memory dump must be one of {', '.join(MEMORY_DUMPS)}")
        unknown = sorted(set(self.only) - set(TEST_IDS))
        if unknown:
            raise SettingsError(f"unknown test id(s) {', '.join(unknown)} (known: {', '.join(TEST_IDS)})")
        if not self.agent_prefix or not self.agent_prefix[0].isalnum():
            raise SettingsError("the agent prefix must start with a letter or digit")
        if self.ssh_engine and shutil.which("ssh-keygen") is None:
            raise SettingsError("--ssh needs OpenSSH's ssh-keygen on PATH (it reads the broker's KRL)")
        if self.kafka_bootstrap and not self.kafka_engine:
            raise SettingsError("--kafka-bootstrap needs --kafka ENGINE")
        if self.kafka_bootstrap and not _is_host_port(self.kafka_bootstrap):
            raise SettingsError(f"--kafka-bootstrap {self.kafka_bootstrap!r} is not HOST:PORT")
        if self.kafka_engine and importlib.util.find_spec("confluent_kafka") is None:
            raise SettingsError("--kafka needs confluent-kafka (pip install 'jitsec[confluent]')")

    @property
    def selected(self) -> tuple[str, ...]:
        return tuple(t for t in TEST_IDS if not self.only or t in self.only)

    @property
    def runs_own_watcher(self) -> bool:
        return self.leak_target is None if self.start_watcher is None else self.start_watcher

    def public(self) -> tuple[tuple[str, str], ...]:
        """The settings as the report shows them: nothing secret (no key, no DSN password)."""
        shown = [
            ("broker", self.broker_url),
            ("config", str(self.config_path) if self.config_path else "(none: store and audit not checked)"),
            ("postgres", postgres_label(self.postgres_dsn) if self.postgres_dsn else "(none)"),
            ("x509 engine", self.x509_engine or "(none)"),
            ("ssh engine", self.ssh_engine or "(none)"),
            ("kafka engine", self._kafka_label()),
            (
                "leak target",
                self.leak_target.describe() if self.leak_target else "(a file the suite creates)",
            ),
            ("watcher", "started by the suite" if self.runs_own_watcher else "the deployment's"),
            ("agent pattern", f"{self.agent_prefix}*"),
            ("secret TTL", f"{self.ttl_seconds} s"),
            ("allowed lateness", f"{self.lateness_seconds:g} s"),
            ("revocation on completion within", f"{self.immediate_seconds:g} s"),
            (
                "uniqueness size",
                f"{self.agents} agents x {self.tasks_per_agent} tasks x {self.requests_per_task} requests",
            ),
            ("leak threshold", f"{self.leak_threshold_seconds:g} s"),
            ("memory dump", self.memory_dump),
            ("broker logs", ", ".join(map(str, self.broker_logs)) or "(none)"),
        ]
        return tuple(shown)

    def _kafka_label(self) -> str:
        if not self.kafka_engine:
            return "(none)"
        return f"{self.kafka_engine} at {self.kafka_bootstrap or 'the bootstrap servers its leases name'}"


def _is_host_port(text: str) -> bool:
    host, _, port = text.rpartition(":")
    return bool(host) and port.isdigit() and 0 < int(port) < 65536


def postgres_label(dsn: str) -> str:
    """host:port/database of a DSN, without user or password."""
    from psycopg.conninfo import conninfo_to_dict  # noqa: PLC0415 - psycopg only when PostgreSQL is used

    parts = conninfo_to_dict(dsn)
    return f"{parts.get('host', 'localhost')}:{parts.get('port', 5432)}/{parts.get('dbname', '')}"
