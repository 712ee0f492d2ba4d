"""`jitsec broker init` + `jitsec broker serve` as a user runs them: a real process, over HTTPS."""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from jitsec.broker.client import BrokerClient


def self_signed(directory) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return str(cert_path), str(key_path)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_init_then_serve_over_tls(tmp_path) -> None:
    config = tmp_path / "broker.toml"
    jitsec = [os.path.join(os.path.dirname(sys.executable), "jitsec")]
    init = subprocess.run(
        [*jitsec, "broker", "init", "--config", str(config), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    keys = json.loads(init.stdout)["keys"]
    cert, _ = self_signed(tmp_path)
    text = config.read_text().replace('# tls_cert = "cert.pem"', 'tls_cert = "cert.pem"')
    config.write_text(text.replace('# tls_key = "key.pem"', 'tls_key = "key.pem"'))
    port = free_port()
    server = subprocess.Popen(
        [*jitsec, "broker", "serve", "--config", str(config), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"https://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                trusted = ssl.create_default_context(cafile=cert)
                if httpx.get(f"{url}/healthz", verify=trusted).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and server.poll() is None, "broker did not start"
            time.sleep(0.1)
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/healthz")  # plain HTTP is not served
        with BrokerClient(url, key=keys["orchestrator"], verify=cert) as orchestrator:
            started = orchestrator.start_task("demo-agent", "first task", ["reports:read"])
        with BrokerClient(url, verify=cert) as agent, agent.task(started.task_id, started.grant) as task:
            secret = task.secret("token", ["reports:read"])
            with BrokerClient(url, key=keys["resource"], verify=cert) as resource:
                assert resource.introspect(secret.value)["active"]
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            output, _ = server.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            output, _ = server.communicate()
            print(output)
            raise
    for value in [*keys.values(), started.grant]:
        assert value not in output
    assert server.returncode in (0, -signal.SIGTERM)  # uvicorn re-raises the signal after a clean stop
    assert "Application shutdown complete" in output
