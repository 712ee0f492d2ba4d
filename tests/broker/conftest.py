"""Broker test harness: a config with fresh keys, a broker over a temporary SQLite file, and a real
uvicorn server on a free loopback port in a thread (the API is always tested over real HTTP)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from jitsec.broker.api.app import create_app
from jitsec.broker.client import BrokerClient
from jitsec.broker.config import BrokerConfig, parse_config
from jitsec.broker.keys import key_hash, new_audit_key, new_principal_key
from jitsec.broker.loopback import LoopbackServer as Server
from jitsec.broker.runtime import Broker, build_broker

from jitsec.testing import ManualClock

ROLES = ("orchestrator", "scanner", "resource", "admin", "analyst")




@dataclass
class Env:
    tmp: Path
    keys: dict[str, str]
    audit_key: str

    def raw_config(self, **sections: Any) -> dict[str, Any]:
        raw: dict[str, Any] = {
            "broker": {"store": f"sqlite://{self.tmp / 'broker.db'}", "audit_key": self.audit_key},
            "principals": [
                {"name": f"{role}-1", "role": role, "key_sha256": key_hash(self.keys[role])} for role in ROLES
            ],
            "engines": {"token": {"default_ttl_seconds": 300, "max_ttl_seconds": 3600}},
            "policy": [
                {
                    "agent": "demo-agent",
                    "max_task_ttl_seconds": 900,
                    "engines": {
                        "token": {"scopes": ["reports:read", "reports:write"], "max_ttl_seconds": 900}
                    },
                },
                {"agent": "ops-*", "engines": {"token": {"scopes": ["ops:*"], "max_ttl_seconds": 60}}},
            ],
            "reaper": {"max_sleep_seconds": 0.05},
        }
        for name, value in sections.items():
            if isinstance(value, dict) and isinstance(raw.get(name), dict):
                raw[name] = {**raw[name], **value}
            else:
                raw[name] = value
        return raw

    def config(self, **sections: Any) -> BrokerConfig:
        return parse_config(self.raw_config(**sections), source="test")


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return Env(tmp=tmp_path, keys={role: new_principal_key() for role in ROLES}, audit_key=new_audit_key())


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@dataclass
class Running:
    broker: Broker
    url: str
    env: Env

    def client(self, role: str | None = None) -> BrokerClient:
        return BrokerClient(self.url, key=self.env.keys[role] if role else None)


@pytest.fixture
def serve(env: Env) -> Iterator[Callable[..., Running]]:
    """``serve(config=None, clock=None, engines=None, run_reaper=True)`` starts a broker over HTTP."""
    stack: list[tuple[Server, Broker]] = []

    def start(
        config: BrokerConfig | None = None,
        clock: Callable[[], float] = time.time,
        engines: dict[str, Any] | None = None,
        run_reaper: bool = True,
        **kwargs: Any,
    ) -> Running:
        broker = build_broker(config or env.config(), clock=clock, engines=engines, **kwargs)
        server = Server(create_app(broker, run_reaper=run_reaper)).start()
        stack.append((server, broker))
        return Running(broker=broker, url=server.url, env=env)

    yield start
    for server, broker in reversed(stack):
        server.stop()
        broker.close()
