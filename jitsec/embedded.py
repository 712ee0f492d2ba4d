"""The whole loop in one process: a throw-away broker over loopback HTTP and a scanner tailing one file
through the real pipeline. The demo runs it; end-to-end tests and the leak-latency benchmark reuse it
(through ``jitsec.testing``).
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jitsec.broker.api.app import create_app
from jitsec.broker.client import BrokerClient
from jitsec.broker.config import parse_config
from jitsec.broker.keys import key_hash, new_audit_key, new_principal_key
from jitsec.broker.loopback import LoopbackServer
from jitsec.broker.runtime import Broker, build_broker
from jitsec.connectors.sources.tail import TailSource
from jitsec.kernel.records import Incident, ResponseAction
from jitsec.pipeline.builder import EngineName, PipelineSettings, RuleSettings, build_pipeline
from jitsec.response.options import ResponseOptions
from jitsec.response.responder import ResponderSettings
from jitsec.scanner.fingerprint import Fingerprinter
from jitsec.scanner.ruleset import RuleSet

ROLES = ("orchestrator", "scanner", "resource", "admin", "analyst")
AGENT = "demo-agent"


class EmbeddedBroker:
    """A throw-away broker over loopback HTTP: fresh keys, SQLite in ``directory``, token engine."""

    def __init__(self, directory: Path, *, on_leak: str | None = None,
                 engines: dict[str, Any] | None = None, policy_engines: dict[str, Any] | None = None) -> None:
        """``engines`` adds ``[engines.*]`` sections and ``policy_engines`` what ``demo-agent`` may get
        from them (tests of other engines, e.g. PostgreSQL)."""
        self.keys = {role: new_principal_key() for role in ROLES}
        raw: dict[str, Any] = {
            "broker": {"store": f"sqlite://{directory / 'broker.db'}", "audit_key": new_audit_key()},
            "principals": [{"name": role, "role": role, "key_sha256": key_hash(self.keys[role])}
                           for role in ROLES],
            "engines": {"token": {"default_ttl_seconds": 300, "max_ttl_seconds": 900}},
            "policy": [{"agent": AGENT, "max_task_ttl_seconds": 900,
                        "engines": {"token": {"scopes": ["reports:read", "reports:write"],
                                              "max_ttl_seconds": 900}}}],
            "reaper": {"max_sleep_seconds": 0.2},
        }
        if on_leak is not None:
            raw["leaks"] = {"on_leak": on_leak}
        raw["engines"].update(engines or {})
        raw["policy"][0]["engines"].update(policy_engines or {})
        self.broker: Broker = build_broker(parse_config(raw, source="demo"))
        self._http = LoopbackServer(create_app(self.broker), name="demo-broker", log_level="error")
        self.url = self._http.url

    def start(self, timeout: float = 10.0) -> EmbeddedBroker:
        self._http.start(timeout)
        return self

    def client(self, role: str | None = None, **kwargs: Any) -> BrokerClient:
        return BrokerClient(self.url, key=self.keys[role] if role else None, **kwargs)

    def close(self) -> None:
        self._http.stop()
        self.broker.close()


class IncidentLog:
    """An in-memory sink: the latest version of each incident, and a signal when one is revoked."""

    name = "demo"

    def __init__(self) -> None:
        self.latest: dict[str, Incident] = {}
        self.revoked = threading.Event()

    def send(self, incident: Incident) -> None:
        self.latest[incident.incident_id] = incident
        if incident.action is ResponseAction.REVOKED:
            self.revoked.set()

    def close(self, timeout: float = 5.0) -> None:
        """Nothing is queued."""


@dataclass
class LoopScanner:
    """A tail of one file through the real engine, pipeline and responder, on a thread."""

    path: Path
    broker_url: str
    scanner_key: str
    state_dir: Path
    sinks: list[Any] = field(default_factory=list)
    poll_interval: float = 0.01
    ruleset: RuleSet | None = None
    engine: EngineName = "auto"

    def __post_init__(self) -> None:
        response = ResponseOptions(broker_url=self.broker_url, broker_key=self.scanner_key,
                                   state_dir=self.state_dir)
        settings = PipelineSettings(rules=RuleSettings(engine=self.engine), response=response)
        self.pipeline = build_pipeline(settings, ruleset=self.ruleset, extra_sinks=self.sinks,
                                       fingerprinter=Fingerprinter(secrets.token_bytes(32)),
                                       responder_settings=ResponderSettings(tick_seconds=0.2))
        assert self.pipeline.response is not None
        self.responder = self.pipeline.response.responder
        self.scanner = self.pipeline.scanner
        self.source = TailSource(self.path, follow=True, poll_interval=self.poll_interval,
                                 partial_timeout=0.05)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self.pipeline.run, name="demo-scanner",
                                        args=([self.source],), kwargs={"stop": self._stop}, daemon=True)

    def start(self, timeout: float = 10.0) -> LoopScanner:
        self._thread.start()
        if not self.source.opened.wait(timeout):
            raise RuntimeError(f"the scanner could not open {self.path}")
        return self

    def close(self) -> None:
        self._stop.set()
        self.source.close()
        self._thread.join(10)
        self.pipeline.close()


def wait_inactive(resource: BrokerClient, token: str, timeout: float,
                  pause: float = 0.01) -> float | None:
    """Introspect until the token is inactive; the monotonic time it was first seen so, or None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not resource.introspect(token, resource="demo-reports-api")["active"]:
            return time.monotonic()
        time.sleep(pause)
    return None
