"""The x509 probe counts a certificate as revoked only when the broker's CRL is shown to list it: a
CRL that cannot be fetched or read never passes test 8.2's "revoked after completion" check."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

from jitsec.broker.client import BrokerClient

from jitsec.conformance.resources import certificate_probe


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_crl_that_cannot_be_fetched_is_not_a_revocation() -> None:
    broker = BrokerClient(f"http://127.0.0.1:{closed_port()}", timeout=2.0)
    try:
        probe = certificate_probe(broker, "x509", 12345)
    finally:
        broker.close()
    assert probe.works and "could not be read" in probe.reason


class GarbageCrl(BaseHTTPRequestHandler):
    """A broker whose CRL route answers 200 with bytes that are no CRL."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/pkix-crl")
        self.end_headers()
        self.wfile.write(b"not a DER CRL")

    def log_message(self, format: str, *args: object) -> None:
        return


def test_a_crl_that_is_not_a_crl_is_not_a_revocation() -> None:
    server = HTTPServer(("127.0.0.1", 0), GarbageCrl)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    broker = BrokerClient(f"http://127.0.0.1:{server.server_address[1]}", timeout=5.0)
    try:
        probe = certificate_probe(broker, "x509", 12345)
    finally:
        broker.close()
        server.shutdown()
    assert probe.works and "could not be read" in probe.reason
