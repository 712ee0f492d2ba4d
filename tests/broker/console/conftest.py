"""The console's harness: a broker over HTTP with an analyst principal, incidents planted through the
incident desk (as a scanner's report would), and an httpx client that signs in like a browser."""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from jitsec.kernel.records import Confidence, ResponseAction, Severity
from jitsec.kernel.sightings import Sighting, sighting_id

CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class ConsoleBroker:
    url: str
    running: Any  # tests/broker/conftest.Running
    keys: dict[str, str] = field(default_factory=dict)

    @property
    def desk(self) -> Any:
        return self.running.broker.service.incidents

    def plant(self, *, location: str = "app.log:12", preview: str = "jit_Ab12…(50 chars)",
              rule: str = "jitsec-token", severity: Severity = Severity.CRITICAL,
              agent: str | None = "demo-agent", fingerprint: str = "", source: str = "file",
              host: str = "web-1") -> str:
        """One incident, made by the desk from one sighting; returns its id."""
        fingerprint = fingerprint or "hmac-sha256:" + hashlib.sha256(
            f"{location}\0{preview}\0{time.time_ns()}".encode()).hexdigest()
        seen = Sighting(
            sighting_id=sighting_id(fingerprint, source, location, host), fingerprint=fingerprint,
            key_id="0f1e2d3c4b5a6978", rule_id=rule, description="a jitsec engine token", severity=severity,
            confidence=Confidence.CONFIRMED, preview=preview, location=location, source=source,
            seen_at=time.time(), scanner="scanner-1", host=host, action=ResponseAction.REVOKED,
            agent=agent, lease_id="lse_0123456789abcdef01234567", revoked_at=time.time(), latency_ms=42.0)
        (outcome,) = self.desk.ingest([seen], "scanner-1")
        return outcome.incident_id

    def browser_like(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, follow_redirects=False, timeout=10)

    def sign_in(self, client: httpx.Client, key: str) -> httpx.Response:
        form = client.get("/console/sign-in")
        token = CSRF_FIELD.search(form.text)
        assert token is not None, form.text
        return client.post("/console/sign-in", data={"csrf": token.group(1), "key": key},
                           headers={"Origin": self.url})


def csrf_of(page: str) -> str:
    token = CSRF_FIELD.search(page)
    assert token is not None, page
    return token.group(1)


@pytest.fixture
def console(serve: Any, env: Any) -> Iterator[Callable[..., ConsoleBroker]]:
    """``console(**config_sections)``: a broker over HTTP whose principals include ``analyst-1``."""

    def start(**sections: object) -> ConsoleBroker:
        running = serve(env.config(**sections))
        return ConsoleBroker(url=running.url, running=running, keys=dict(env.keys))

    yield start
