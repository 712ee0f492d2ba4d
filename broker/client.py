"""The broker's HTTP client and the agent SDK.

    orchestrator = BrokerClient(url, key=ORCHESTRATOR_KEY)
    started = orchestrator.start_task("demo-agent", "weekly report", ["reports:read"], ttl_seconds=600)

    with BrokerClient(url).task(started.task_id, started.grant) as task:   # in the agent
        token = task.secret("token", scopes=["reports:read"])
        call_api(token.value)                                              # rotated transparently

The task completes when the block exits, on an exception too, and on SIGTERM. Secrets live in this
process's memory only: nothing here writes them to the environment, a file or a log, and ``repr`` of
every object holding one is redacted. The transport is injectable (``httpx.MockTransport``,
``httpx.HTTPTransport(uds=...)``) and so is the clock.
"""

from __future__ import annotations

import logging
import signal
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode, urlsplit

import httpx
from jitsec.broker.leaks import (
    FingerprintPage,
    LeakReport,
    LeakScope,
    LeakVerdict,
    leak_batches,
    reports_body,
)

from jitsec.kernel.addresses import is_loopback
from jitsec.kernel.redaction import preview
from jitsec.kernel.schemas import SIGHTING
from jitsec.kernel.sightings import Sighting, sighting_batches

if TYPE_CHECKING:
    from jitsec.broker.sdk_x509 import ClientCertificate

log = logging.getLogger("jitsec.broker.client")
DEFAULT_TIMEOUT = 10.0
ROTATE_AT_FRACTION = 0.8  # rotate a secret once 80% of its lifetime has passed


class BrokerAPIError(Exception):
    """The broker refused a request: ``status`` (HTTP), ``code`` (stable), ``detail`` (the reason)."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status, self.code, self.detail = status, code, detail


@dataclass(frozen=True, slots=True)
class StartedTask:
    task_id: str
    agent: str
    scopes: tuple[str, ...]
    expires_at: float
    grant_expires_at: float
    grant: str = field(repr=False)


class BrokerClient:
    """One HTTP connection pool to the broker. ``key`` is a principal key (orchestrator, resource,
    scanner, admin); agents need none (they authenticate with the grant, then the task token).
    ``verify`` may name the CA bundle of a broker served with a private CA."""

    def __init__(
        self,
        url: str,
        key: str | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        verify: bool | str = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._key = key
        self.clock = clock
        parts = urlsplit(url)
        if key and parts.scheme == "http" and not is_loopback(parts.hostname or ""):
            log.warning("the broker key will travel in clear text to %s (plain http to another host): "
                        "use an https:// broker URL", parts.hostname)
        tls = ssl.create_default_context(cafile=verify) if isinstance(verify, str) else verify
        self._http = httpx.Client(base_url=url.rstrip("/"), transport=transport, timeout=timeout, verify=tls)

    def __repr__(self) -> str:
        return f"BrokerClient({str(self._http.base_url)!r}, key={'<redacted>' if self._key else None})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> BrokerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, *, bearer: str | None = None, json: Any = None) -> Any:
        """Send one request; a non-2xx answer raises ``BrokerAPIError`` with the broker's reason."""
        credential = bearer or self._key
        headers = {"Authorization": f"Bearer {credential}"} if credential else {}
        response = self._http.request(method, path, headers=headers, json=json)
        if response.status_code >= 400:
            try:
                body = response.json()
                code, detail = str(body.get("error", "error")), str(body.get("detail", ""))
            except ValueError:
                code, detail = "error", response.reason_phrase
            raise BrokerAPIError(response.status_code, code, detail)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    # orchestrator ----------------------------------------------------------------------------------
    def start_task(
        self, agent: str, task: str, scopes: Sequence[str], ttl_seconds: int | None = None
    ) -> StartedTask:
        body = self.request(
            "POST",
            "/v1/tasks",
            json={"agent": agent, "task": task, "scopes": list(scopes), "ttl_seconds": ttl_seconds},
        )
        return StartedTask(
            task_id=body["task_id"],
            agent=body["agent"],
            scopes=tuple(body["scopes"]),
            expires_at=body["expires_at"],
            grant_expires_at=body["grant_expires_at"],
            grant=body["grant"],
        )

    def complete_task(self, task_id: str, *, bearer: str | None = None) -> dict[str, Any]:
        return self.request("POST", f"/v1/tasks/{task_id}/complete", bearer=bearer)

    def get_task(self, task_id: str, *, bearer: str | None = None) -> dict[str, Any]:
        return self.request("GET", f"/v1/tasks/{task_id}", bearer=bearer)

    # leases ----------------------------------------------------------------------------------------
    def get_lease(self, lease_id: str, *, bearer: str | None = None) -> dict[str, Any]:
        return self.request("GET", f"/v1/leases/{lease_id}", bearer=bearer)

    def revoke_lease(self, lease_id: str, *, bearer: str | None = None) -> dict[str, Any]:
        return self.request("DELETE", f"/v1/leases/{lease_id}", bearer=bearer)

    def rotate_lease(
        self,
        lease_id: str,
        grace_seconds: float = 0,
        *,
        bearer: str | None = None,
        public_key: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"grace_seconds": grace_seconds}
        if public_key:
            body["public_key"] = public_key
        return self.request("POST", f"/v1/leases/{lease_id}/rotate", bearer=bearer, json=body)

    # resource servers and admins -------------------------------------------------------------------
    def introspect(self, token: str, resource: str = "") -> dict[str, Any]:
        return self.request("POST", "/v1/introspect", json={"token": token, "resource": resource})

    def quarantine(self, agent: str, reason: str = "") -> dict[str, Any]:
        return self.request("POST", f"/v1/agents/{agent}/quarantine", json={"reason": reason})

    def release(self, agent: str) -> None:
        self.request("DELETE", f"/v1/agents/{agent}/quarantine")

    def x509_crl(self, engine: str | None = None) -> bytes:
        """The DER CRL of an x509 engine (``GET /v1/x509/crl``; public, no key needed)."""
        return self._published("/v1/x509/crl", engine)

    def ssh_krl(self, engine: str | None = None) -> bytes:
        """The OpenSSH KRL of an ssh engine (``GET /v1/ssh/krl``; public, no key needed)."""
        return self._published("/v1/ssh/krl", engine)

    def _published(self, path: str, engine: str | None) -> bytes:
        """A revocation list the broker publishes without authentication, as bytes."""
        response = self._http.get(path, params={"engine": engine} if engine else None)
        if response.status_code >= 400:
            raise BrokerAPIError(response.status_code, "error", response.reason_phrase)
        return response.content

    # scanners (the leak response; records in broker.leaks) ---------------------------------------
    def report_leaks(self, reports: Sequence[LeakReport], *,
                     on_leak: LeakScope | None = None) -> list[LeakVerdict]:
        """Report fingerprints (never secrets); one verdict per report, in order. Large batches are
        split to stay under the broker's request-size limit."""
        verdicts: list[LeakVerdict] = []
        for batch in leak_batches(reports):
            body = self.request("POST", "/v1/leaks", json=reports_body(batch, on_leak))
            verdicts.extend(LeakVerdict.from_json(item) for item in body["results"])
        return verdicts

    def live_fingerprints(self, cursor: str | None = None) -> FingerprintPage:
        """One page of live leases' SHA-256 fingerprints; follow ``next_cursor`` until None."""
        path = "/v1/fingerprints" + (f"?{urlencode({'cursor': cursor})}" if cursor else "")
        return FingerprintPage.from_json(self.request("GET", path))

    # the fleet's incidents (records in broker.incidents; scanners send, analysts work) -----------
    def report_sightings(self, sightings: Sequence[Sighting]) -> list[dict[str, Any]]:
        """Send sightings (fingerprints and redacted previews only); one outcome each, in order. Split
        into request-sized batches; safe to send again (the broker counts each sighting once)."""
        outcomes: list[dict[str, Any]] = []
        items = [{k: v for k, v in SIGHTING.to_dict(s).items() if k != "schema"} for s in sightings]
        for batch in sighting_batches(items):
            outcomes.extend(self.request("POST", "/v1/incidents", json={"sightings": batch})["results"])
        return outcomes

    def fingerprint_key(self) -> bytes:
        """The fleet's fingerprint key (scanner role)."""
        return bytes.fromhex(self.request("GET", "/v1/fingerprint-key")["key"])

    def incidents(self, *, cursor: str | None = None, limit: int = 50,
                  **filters: str | float | Sequence[str] | None) -> dict[str, Any]:
        """One page of incidents (``incidents``, ``next_cursor``); filters as ``GET /v1/incidents``."""
        query: list[tuple[str, str]] = []
        for name, value in {**filters, "cursor": cursor, "limit": limit}.items():
            values = value if isinstance(value, list | tuple) else [value]
            query.extend((name, str(v)) for v in values if v is not None and v != "")
        return self.request("GET", "/v1/incidents" + (f"?{urlencode(query)}" if query else ""))

    def incident(self, incident_id: str) -> dict[str, Any]:
        return self.request("GET", f"/v1/incidents/{quote(incident_id, safe='')}")

    def act_on_incident(self, incident_id: str, action: str, *, reason: str = "",
                        assignee: str | None = None, text: str = "") -> dict[str, Any]:
        """``action``: ack, resolve, reopen, false_positive (with ``reason``), assign (``assignee``),
        note (``text``)."""
        body: dict[str, Any] = ({"assignee": assignee} if action == "assign" else
                                {"text": text} if action == "note" else {"reason": reason})
        return self.request("POST", f"/v1/incidents/{quote(incident_id, safe='')}/{quote(action, safe='')}",
                            json=body)

    # agents ----------------------------------------------------------------------------------------
    def redeem(self, task_id: str, grant: str) -> tuple[str, float]:
        """The task token and its expiry, for the one-time grant."""
        body = self.request("POST", f"/v1/tasks/{task_id}/redeem", bearer=grant)
        return body["token"], body["expires_at"]

    def task(self, task_id: str, grant: str, *, handle_sigterm: bool = True) -> AgentTask:
        return AgentTask(self, task_id, grant, handle_sigterm=handle_sigterm)


class Secret:
    """One issued secret, in memory only. ``value`` is always a live secret: past 80% of its lifetime it
    is rotated first (the broker revokes the old one). ``str``/``repr`` show a redacted preview."""

    def __init__(self, task: AgentTask, body: dict[str, Any],
                 new_public_key: Callable[[], str] | None = None) -> None:
        self._task = task
        self._lock = threading.Lock()
        self._new_public_key = new_public_key  # a fresh agent key per rotation (certifying engines)
        self._load(body)

    def _load(self, body: dict[str, Any]) -> None:
        self._value: str | None = body["secret"]
        self.lease_id: str = body["lease_id"]
        self.engine: str = body["engine"]
        self.scopes: tuple[str, ...] = tuple(body["scopes"])
        self.expires_at: float = body["expires_at"]
        self.username: str | None = body.get("username")
        self.details: dict[str, str] = dict(body.get("details") or {})
        now = self._task.client.clock()
        self.rotate_at = now + (self.expires_at - now) * ROTATE_AT_FRACTION

    @property
    def value(self) -> str:
        with self._lock:
            if self._value is None:
                raise RuntimeError(f"secret of lease {self.lease_id} was purged (task completed)")
            if self._task.client.clock() >= self.rotate_at and self._task.is_open:
                self._rotate_locked(0)
            return self._value

    def reveal(self) -> str:
        return self.value

    def rotate(self, grace_seconds: float = 0) -> None:
        """Replace the secret now; the old one dies after ``grace_seconds``."""
        with self._lock:
            self._rotate_locked(grace_seconds)

    def _rotate_locked(self, grace_seconds: float) -> None:
        public_key = self._new_public_key() if self._new_public_key is not None else None
        body = self._task.client.rotate_lease(self.lease_id, grace_seconds, bearer=self._task.token,
                                              public_key=public_key)
        log.info("rotated lease %s -> %s", self.lease_id, body["lease_id"])
        self._load(body)

    def purge(self) -> None:
        with self._lock:
            self._value = None

    def __repr__(self) -> str:
        shown = preview(self._value) if self._value else "<purged>"
        return f"Secret(lease_id={self.lease_id!r}, engine={self.engine!r}, value={shown})"

    __str__ = __repr__


class AgentTask:
    """The agent's side of one task: redeem on enter, complete on exit (and on SIGTERM)."""

    def __init__(
        self, client: BrokerClient, task_id: str, grant: str, *, handle_sigterm: bool = True
    ) -> None:
        self.client, self.task_id = client, task_id
        self._grant: str | None = grant
        self._token: str | None = None
        self._secrets: list[Secret] = []
        self._handle_sigterm = handle_sigterm
        self._previous_handler: Any = None
        self._completed = False
        self.expires_at: float | None = None

    def __repr__(self) -> str:
        return f"AgentTask({self.task_id!r}, open={self.is_open})"

    @property
    def token(self) -> str:
        if self._token is None:
            raise RuntimeError("the task is not open (use it as a context manager)")
        return self._token

    @property
    def is_open(self) -> bool:
        return self._token is not None and not self._completed

    def __enter__(self) -> AgentTask:
        if self._grant is None:
            raise RuntimeError("a task is entered once: its grant is single-use")
        self._token, self.expires_at = self.client.redeem(self.task_id, self._grant)
        self._grant = None
        if self._handle_sigterm and threading.current_thread() is threading.main_thread():
            self._previous_handler = signal.signal(signal.SIGTERM, self._on_sigterm)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            self.complete()
        except (BrokerAPIError, httpx.HTTPError) as error:
            if exc_type is None:
                raise
            log.warning("could not complete task %s while handling %s: %s (its leases still expire)",
                        self.task_id, exc_type.__name__, error)
        finally:
            if self._previous_handler is not None:
                signal.signal(signal.SIGTERM, self._previous_handler)
                self._previous_handler = None

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        self.complete()
        raise SystemExit(128 + signum)

    def secret(
        self,
        engine: str,
        scopes: Sequence[str],
        ttl_seconds: int | None = None,
        *,
        public_key: str | None = None,
        new_public_key: Callable[[], str] | None = None,
    ) -> Secret:
        """``public_key``: the agent's own public key or CSR, for engines that certify a key it keeps;
        ``new_public_key`` makes a fresh one for the first issue (when ``public_key`` is not given) and
        for every rotation (``broker.sdk_ssh`` passes its key maker)."""
        request: dict[str, Any] = {"engine": engine, "scopes": list(scopes), "ttl_seconds": ttl_seconds}
        if not public_key and new_public_key is not None:
            public_key = new_public_key()
        if public_key:
            request["public_key"] = public_key
        body = self.client.request("POST", "/v1/secrets", bearer=self.token, json=request)
        secret = Secret(self, body, new_public_key)
        self._secrets.append(secret)
        return secret

    def client_certificate(
        self, engine: str, scopes: Sequence[str], ttl_seconds: int | None = None
    ) -> ClientCertificate:
        """An X.509 client certificate on a key made here (see ``broker.sdk_x509``)."""
        from jitsec.broker.sdk_x509 import ClientCertificate  # noqa: PLC0415 - cryptography, for its users only

        return ClientCertificate(self, engine, scopes, ttl_seconds)

    def complete(self) -> None:
        """Complete the task at the broker (revoking all its leases) and purge every secret held."""
        if self._completed or self._token is None:
            return
        try:
            self.client.complete_task(self.task_id, bearer=self._token)
        except BrokerAPIError as error:
            if error.status != 401:  # 401: the task ended already (expired, quarantined): nothing to do
                raise  # the task token is kept: complete() may be called again (the broker is idempotent)
        finally:
            for secret in self._secrets:  # secrets leave memory whatever the broker answered
                secret.purge()
            self._secrets.clear()
        self._completed = True
        self._token = None
