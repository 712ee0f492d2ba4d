"""What every test gets: the broker clients, the database target, a ledger of the secrets handed out,
a recorder for its evidence, and cleanup of whatever it started.

Tests act as the orchestrator (start and complete tasks), as a real agent through the SDK (redeem
the grant, ask for secrets) and as a resource server (introspection, PostgreSQL logins).
"""

from __future__ import annotations

import secrets as random_source
import threading
import time
from collections.abc import Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from jitsec.broker.client import AgentTask, BrokerAPIError, BrokerClient, Secret, StartedTask
from jitsec.conformance.audit_view import AuditView
from jitsec.conformance.model import Check, Searched
from jitsec.conformance.resources import PostgresTarget
from jitsec.conformance.settings import SuiteSettings


@dataclass(frozen=True, slots=True)
class Issued:
    """A secret the suite obtained as an agent, with its value as issued (``repr`` redacted)."""

    lease_id: str
    engine: str
    username: str | None
    value: str = field(repr=False)
    handle: Secret = field(repr=False)


class SecretLedger:
    """Every secret the suite saw in this run, in memory only: the report is checked against it.
    ``repr`` shows the count, never a value."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._lock = threading.Lock()

    def add(self, *values: str | None) -> None:
        with self._lock:
            self._values.update(v for v in values if v)

    def values(self) -> tuple[str, ...]:
        with self._lock:
            return tuple(sorted(self._values))

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"SecretLedger({len(self._values)} secrets)"


@dataclass(slots=True)
class Recorder:
    """One test's evidence as it accumulates; the runner freezes it into a ``ConformanceResult``."""

    test_id: str
    checks: list[Check]
    notes: list[str]
    searched: list[Searched]
    task_ids: list[str]
    facts: dict[str, str]
    agents: list[str]

    @classmethod
    def new(cls, test_id: str) -> Recorder:
        return cls(test_id, [], [], [], [], {}, [])

    def check(
        self,
        name: str,
        passed: bool,
        detail: str = "",
        *,
        measured: float | None = None,
        limit: float | None = None,
    ) -> bool:
        rounded = None if measured is None else round(measured, 4)
        self.checks.append(Check(name, bool(passed), detail, rounded, limit))
        return bool(passed)

    def note(self, text: str) -> None:
        self.notes.append(text)

    def fact(self, key: str, value: str) -> None:
        self.facts[key] = value


class Context:
    """Shared by the tests of one run. Not thread-safe except where noted; tests run one at a time."""

    def __init__(self, settings: SuiteSettings, work_dir: Path, ledger: SecretLedger | None = None) -> None:
        self.settings = settings
        self.work_dir = work_dir
        self.run_id = random_source.token_hex(3)
        self.ledger = ledger if ledger is not None else SecretLedger()
        url = settings.broker_url
        self.orchestrator = BrokerClient(url, key=settings.keys.orchestrator)
        self.resource = BrokerClient(url, key=settings.keys.resource)
        self.anonymous = BrokerClient(url)
        self.postgres = PostgresTarget(settings.postgres_dsn) if settings.postgres_dsn else None
        self.audit = AuditView.open(settings.config_path) if settings.config_path else None
        self._open_tasks: list[str] = []
        self._agent_counter = 0
        self._scanner: Any = None
        self._agent_clients: list[BrokerClient] = []

    def scanner(self) -> Any:
        """The project's scanner with the default rule packs, keyed by a key of this run only (the
        suite writes no fingerprint key file). Built on first use: rule compilation takes a moment."""
        if self._scanner is None:
            from jitsec.scanner.engine import Scanner  # noqa: PLC0415 - Hyperscan only for tests that search
            from jitsec.scanner.fingerprint import Fingerprinter  # noqa: PLC0415
            from jitsec.scanner.ruleset import load_ruleset  # noqa: PLC0415

            self._scanner = Scanner(load_ruleset(), Fingerprinter(random_source.token_bytes(32)))
        return self._scanner

    def close(self) -> None:
        self.cleanup()
        for client in (self.orchestrator, self.resource, self.anonymous, *self._agent_clients):
            client.close()
        if self.audit is not None:
            self.audit.close()

    # names -----------------------------------------------------------------------------------------
    def agent(self, rec: Recorder, label: str) -> str:
        """A fresh agent name under the deployment's conformance pattern (one per use: no sharing)."""
        self._agent_counter += 1
        name = f"{self.settings.agent_prefix}{self.run_id}-{label}{self._agent_counter}"
        rec.agents.append(name)
        return name

    def task_name(self, label: str) -> str:
        return f"conformance {label} {self.run_id}-{random_source.token_hex(4)}"

    # token scopes the deployment's policy grants the conformance agents (see docs/conformance.md)
    READ = "conformance:read"
    WRITE = "conformance:write"
    BEYOND_POLICY = "conformance:admin"

    # tasks -----------------------------------------------------------------------------------------
    def start_task(
        self, rec: Recorder, agent: str, scopes: Sequence[str], ttl_seconds: int = 120, label: str = "task"
    ) -> StartedTask:
        started = self.orchestrator.start_task(agent, self.task_name(label), scopes, ttl_seconds)
        self.ledger.add(started.grant)
        rec.task_ids.append(started.task_id)
        self._open_tasks.append(started.task_id)
        return started

    def agent_task(self, started: StartedTask) -> AgentTask:
        """The agent's SDK session for a task (enter it to redeem the grant)."""
        return BrokerClient(self.settings.broker_url).task(
            started.task_id, started.grant, handle_sigterm=False
        )

    def enter(self, task: AgentTask) -> AgentTask:
        task.__enter__()
        self.ledger.add(task.token)
        return task

    def secret(
        self, task: AgentTask, engine: str, scopes: Sequence[str], ttl_seconds: int | None = None
    ) -> Issued:
        """Ask for a secret as the agent; its value is read once, here, so that later checks never
        trigger the SDK's rotate-on-read (an agent that stays silent does not rotate)."""
        secret = task.secret(engine, scopes, ttl_seconds)
        issued = Issued(secret.lease_id, secret.engine, secret.username, secret.reveal(), secret)
        self.ledger.add(issued.value)
        return issued

    def complete(self, task_id: str) -> dict[str, Any]:
        return self.orchestrator.complete_task(task_id)

    def lease(self, lease_id: str) -> dict[str, Any]:
        return self.orchestrator.get_lease(lease_id)

    def cleanup(self, task_ids: Iterable[str] | None = None) -> None:
        """Complete the given (default: every) task this run started; completion is idempotent."""
        targets = list(self._open_tasks if task_ids is None else task_ids)
        for task_id in targets:
            with suppress(BrokerAPIError, httpx.HTTPError):
                self.orchestrator.complete_task(task_id)
            if task_id in self._open_tasks:
                self._open_tasks.remove(task_id)


def elapsed_since(start: float) -> float:
    return time.monotonic() - start
