"""Real TLS peers for sink tests: a CA made for the test, a syslog-over-TLS listener (RFC 5425 framing)
and an HTTPS front for Elasticsearch that checks the Authorization header before forwarding."""

from __future__ import annotations

import datetime
import ipaddress
import socketserver
import ssl
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import BinaryIO

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class MadeCa:
    ca_file: Path  # what clients trust
    cert_file: Path  # the server's certificate for 127.0.0.1, signed by the CA
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def make_ca(directory: Path) -> MadeCa:
    """A CA and a 127.0.0.1 server certificate it signed, valid for an hour."""
    now = datetime.datetime.now(datetime.UTC)
    start, end = now - datetime.timedelta(minutes=1), now + datetime.timedelta(hours=1)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("jitsec test CA")).issuer_name(_name("jitsec test CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(start).not_valid_after(end)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, encipher_only=False,
                                       decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name("127.0.0.1")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                           critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = MadeCa(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    paths.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths.key_file.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return paths


def read_octet_counted(stream: BinaryIO, messages: list[bytes]) -> None:
    """Append each ``MSG-LEN SP SYSLOG-MSG`` frame (RFC 6587 §3.4.1, RFC 5425) until the stream ends."""
    while True:
        length = b""
        while (ch := stream.read(1)) not in (b" ", b""):
            length += ch
        if not length.isdigit():
            return
        messages.append(stream.read(int(length)))


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


class TlsSyslogReceiver:
    """Syslog over TLS on loopback: RFC 5425 ``MSG-LEN SP SYSLOG-MSG`` frames inside TLS."""

    def __init__(self, ca: MadeCa) -> None:
        self.messages: list[bytes] = []
        self.handshakes_failed = 0
        context = ca.server_context()
        receiver = self

        class Handler(socketserver.StreamRequestHandler):
            def setup(self) -> None:
                try:
                    self.request = context.wrap_socket(self.request, server_side=True)
                except (ssl.SSLError, OSError):
                    receiver.handshakes_failed += 1
                    raise
                super().setup()

            def handle(self) -> None:
                read_octet_counted(self.rfile, receiver.messages)

        self._server = _Server(("127.0.0.1", 0), Handler)
        self.port = int(self._server.server_address[1])
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class HttpsFront:
    """HTTPS on loopback in front of a plain-HTTP upstream; refuses (401) a request whose
    Authorization header is not ``expected``, forwards the others and records what it saw."""

    def __init__(self, ca: MadeCa, upstream: str, expected: str) -> None:
        self.authorizations: list[str | None] = []
        front = self
        client = httpx.Client(base_url=upstream, timeout=10)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                front.authorizations.append(self.headers.get("Authorization"))
                if self.headers.get("Authorization") != expected:
                    self._reply(401, {"Content-Type": "application/json"}, b'{"error":"unauthorized"}')
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("content-type", "accept")}
                answer = client.request(self.command, self.path, content=body, headers=headers)
                kept = {k: v for k, v in answer.headers.items()
                        if k.lower() in ("content-type", "x-elastic-product")}
                self._reply(answer.status_code, kept, answer.content)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _forward

            def _reply(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.socket = ca.server_context().wrap_socket(self._server.socket, server_side=True)
        self.port = int(self._server.server_address[1])
        self._client = client
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._client.close()
