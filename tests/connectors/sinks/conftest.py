"""Helpers for sink tests: incidents and real loopback receivers (HTTP, syslog UDP/TCP)."""

from __future__ import annotations

import contextlib
import json
import socket
import socketserver
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from jitsec.connectors.sinks.spool import Backoff

from jitsec.kernel import credential_format as cf
from jitsec.kernel.records import BrokerStatus, Confidence, Incident, ResponseAction, Severity
from jitsec.kernel.redaction import preview
from jitsec.testing import wait_until

from .tls_peers import read_octet_counted

FAST = Backoff(initial=0.01, maximum=0.1)


@pytest.fixture
def fast_backoff() -> Backoff:
    return FAST


@pytest.fixture
def leaked_token() -> str:
    return cf.mint(cf.CredentialKind.ENGINE_TOKEN)


@pytest.fixture
def make_incident(leaked_token: str) -> Callable[..., Incident]:
    def make(number: int = 1, **changes: object) -> Incident:
        values: dict[str, object] = {
            "incident_id": f"inc-{number}",
            "version": 1,
            "fingerprint": cf.sha256_fingerprint(leaked_token + str(number)),
            "rule_id": "jitsec-engine-token",
            "description": "broker-issued engine token",
            "severity": Severity.CRITICAL,
            "confidence": Confidence.CONFIRMED,
            "preview": preview(leaked_token),
            "occurrences": 1,
            "first_seen": 1_700_000_000.0 + number,
            "last_seen": 1_700_000_000.0 + number,
            "locations": ("/var/log/agent.log:12",),
            "action": ResponseAction.REVOKED,
            "broker": BrokerStatus.REVOKED,
            "lease_id": "lease-1",
            "agent": "demo-agent",
            "task": "t-1",
            "scopes": ("reports:read",),
            "revoked_at": 1_700_000_000.5,
            "latency_ms": 12.5,
        }
        values.update(changes)
        return Incident(**values)  # type: ignore[arg-type]

    return make


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class HttpReceiver:
    """A real HTTP server on loopback that records JSON bodies; ``status`` is what it answers."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.bodies: list[dict] = []
        self.raw: list[tuple[dict[str, str], bytes]] = []  # headers and exact bytes of each accepted POST
        self.attempts = 0
        self.status = 200
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver._lock:
                    status = receiver.status
                    receiver.attempts += 1
                    if status < 300:
                        receiver.bodies.append(json.loads(body))
                        receiver.raw.append((dict(self.headers.items()), body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@pytest.fixture
def http_receiver() -> Iterator[HttpReceiver]:
    receiver = HttpReceiver(free_port())
    yield receiver
    receiver.stop()


class _ReusableTcpServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True  # the test stops and restarts a listener on the same port
    daemon_threads = True


class SyslogReceiver:
    """Real syslog listeners on loopback: UDP datagrams, or TCP with octet-counting framing."""

    def __init__(self, protocol: str, port: int) -> None:
        self.protocol = protocol
        self.port = port
        self.messages: list[bytes] = []
        self._server: socketserver.BaseServer | None = None
        self._connections: list[socket.socket] = []

    def start(self) -> None:
        receiver = self

        class Udp(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                receiver.messages.append(self.request[0])

        class Tcp(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                receiver._connections.append(self.connection)
                read_octet_counted(self.rfile, receiver.messages)

        if self.protocol == "udp":
            self._server = socketserver.ThreadingUDPServer(("127.0.0.1", self.port), Udp)
        else:
            self._server = _ReusableTcpServer(("127.0.0.1", self.port), Tcp)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        for connection in self._connections:  # a stopped receiver drops its clients too
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
            connection.close()
        self._connections.clear()


@pytest.fixture
def syslog_receivers() -> Iterator[Callable[[str], SyslogReceiver]]:
    made: list[SyslogReceiver] = []

    def make(protocol: str) -> SyslogReceiver:
        kind = socket.SOCK_DGRAM if protocol == "udp" else socket.SOCK_STREAM
        receiver = SyslogReceiver(protocol, free_port(kind))
        made.append(receiver)
        return receiver

    yield make
    for receiver in made:
        receiver.stop()




@pytest.fixture
def wait_for() -> Callable[..., bool]:
    """Poll a condition (tests assert outcomes, never wall time)."""
    return wait_until
