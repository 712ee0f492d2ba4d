"""The fault suite's harness: real `jitsec` processes that a test kills with SIGKILL and starts again.

Everything here runs the installed command line (`jitsec broker serve`, `jitsec watch`, `jitsec scan`)
as a child process, so a crash is a real crash: no shutdown hook, no final flush, no clean close.
The watch, Kafka and HTTP receiver helpers are the connector tests' own, imported here.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from jitsec.broker.bootstrap import init_config
from jitsec.broker.config import BrokerConfig, load_config
from jitsec.broker.model import Lease
from jitsec.broker.store.registry import open_store

from jitsec.testing import start_redeemed_task
from tests.broker_postgres.conftest import role_prefix  # noqa: F401 - fixture
from tests.connectors.conftest import Lines, kafka_tools, start_watch, watch_env  # noqa: F401 - fixtures
from tests.connectors.sinks.conftest import free_port, http_receiver  # noqa: F401 - fixture

JITSEC = str(Path(sys.executable).with_name("jitsec"))
AGENT_SCOPES = ["reports:read"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under tests/faults carries the ``faults`` marker (``-m faults`` runs the suite alone)."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.faults)


class BrokerProcess:
    """`jitsec broker serve` over a config written by `jitsec broker init`, on one fixed port, so a
    restarted process serves the same URL. ``kill`` is SIGKILL; ``start`` returns once /healthz answers
    (the wall-clock time it first did is ``ready_at``: the reaper started before it)."""

    def __init__(self, config: Path, keys: dict[str, str]) -> None:
        self.config_path, self.keys = config, keys
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.ready_at = 0.0

    @property
    def config(self) -> BrokerConfig:
        return load_config(self.config_path)

    def start(self) -> BrokerProcess:
        self.process = subprocess.Popen(
            [JITSEC, "broker", "serve", "--config", str(self.config_path), "--port", str(self.port),
             "--log-level", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    self.ready_at = time.time()
                    return self
            except httpx.TransportError:
                pass
            assert self.process.poll() is None, f"the broker exited with {self.process.returncode}"
            assert time.monotonic() < deadline, "the broker did not answer /healthz within 60 s"
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to finish anything."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)

    def leases(self, task_id: str) -> list[Lease]:
        """The task's leases as the store holds them (read by the test, not through the API)."""
        config = self.config
        store = open_store(config.store_url, config.audit_key)
        try:
            return store.leases_of_task(task_id)
        finally:
            store.close()

    def start_task(self, ttl: int = 900, scopes: list[str] | None = None) -> tuple[str, str]:
        """A demo-agent task, redeemed: (task_id, task token)."""
        return start_redeemed_task(self.url, self.keys["orchestrator"], scopes or AGENT_SCOPES,
                                   task="fault trial", ttl=ttl)


@pytest.fixture
def broker_process(tmp_path: Path) -> Iterator[Callable[..., BrokerProcess]]:
    """``broker_process(store=None, postgres=None, edit=None)``: a configured, not yet started broker
    (``store`` a store URL, SQLite in tmp_path by default; ``postgres`` an admin DSN for the engine;
    ``edit`` rewrites the config text). Whatever is still running at the end is killed."""
    made: list[BrokerProcess] = []

    def make(store: str | None = None, postgres: str | None = None,
             edit: Callable[[str], str] | None = None) -> BrokerProcess:
        config = tmp_path / f"broker-{len(made)}.toml"
        keys = init_config(config, store=store, postgres=postgres).keys
        if edit is not None:
            config.write_text(edit(config.read_text()))
        made.append(BrokerProcess(config, keys))
        return made[-1]

    yield make
    for broker in made:
        broker.stop()


def peak_rss_mib(arguments: list[str], **options: object) -> tuple[int, float]:
    """Run ``arguments`` in a fresh wrapper process and return (exit code, the child's peak RSS in MiB).

    The wrapper waits for its only child and reads ``RUSAGE_CHILDREN``, so no other process the test
    suite ran is counted."""
    wrapper = ("import json, resource, subprocess, sys;"
               "code = subprocess.run(sys.argv[1:]).returncode;"
               "print(json.dumps([code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss]))")
    result = subprocess.run([sys.executable, "-c", wrapper, *arguments], capture_output=True, text=True,
                            check=True, **options)  # type: ignore[call-overload]
    code, kib = json.loads(result.stdout.strip().splitlines()[-1])
    return int(code), kib / 1024


def jitsec_env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "JITSEC_FINGERPRINT_KEY": "22" * 32, "JITSEC_STATE_DIR": str(tmp_path / "state")}
