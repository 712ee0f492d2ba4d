"""Client certificates against a real TLS server: nginx from Debian (``scripts/services start nginx``)
with ``ssl_verify_client on``, trusting the broker CA of an x509 engine and reading its CRL file.

A certificate is accepted; after its lease is revoked (completion, or a leaked private key found by
the scanner) and nginx has reloaded the CRL, it is refused; after its notAfter it is refused too.
nginx answers a refused client certificate with HTTP 400 (or ends the handshake), never 200.
"""

from __future__ import annotations

import json
import shlex
import ssl
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from cryptography import x509
from jitsec.broker.client import BrokerClient

from jitsec.cli import main

SCOPE = "x509:name:agent.internal"
REFUSAL_WAIT = 20.0  # seconds: a reload is asynchronous (new workers start, old ones drain)

pytestmark = pytest.mark.nginx


def x509_broker(serve: Callable[..., Any], env: Any, nginx_settings: dict[str, str], **options: Any) -> Any:
    config = env.config(
        engines={"x509": {"state_dir": nginx_settings["ca_dir"], "crl_path": nginx_settings["crl"],
                          "default_ttl_seconds": 120, "max_ttl_seconds": 600, **options}},
        policy=[{"agent": "demo-agent", "max_task_ttl_seconds": 900,
                 "engines": {"x509": {"scopes": ["x509:name:*.internal"], "max_ttl_seconds": 600}}}],
    )
    return serve(config)


@pytest.fixture
def broker(serve: Callable[..., Any], env: Any, nginx_settings: dict[str, str]) -> Any:
    """An x509 engine whose CA nginx trusts; the test reloads nginx itself."""
    return x509_broker(serve, env, nginx_settings)


@pytest.fixture
def reloading_broker(serve: Callable[..., Any], env: Any, nginx_settings: dict[str, str]) -> Any:
    """The same, and the engine reloads nginx after every CRL change (``crl_reload_command``)."""
    return x509_broker(serve, env, nginx_settings, crl_reload_command=[nginx_settings["reload"]])


def answer(nginx: dict[str, str], context: ssl.SSLContext) -> int | str:
    """nginx's status for a request with this client context, or the TLS error that ended it."""
    try:
        with httpx.Client(verify=context, timeout=10) as http:
            response = http.get(nginx["url"])
    except httpx.TransportError as error:  # a handshake the server aborted
        return type(error).__name__
    return response.status_code if response.status_code != 200 else f"200 {response.text.strip()}"


def reload_until_refused(nginx: dict[str, str], context: ssl.SSLContext) -> int | str:
    """Reload nginx (it reads the CRL at reload) until this certificate is refused or time runs out."""
    deadline = time.monotonic() + REFUSAL_WAIT
    while True:
        subprocess.run(shlex.split(nginx["reload"]), check=True, capture_output=True, timeout=30)
        time.sleep(0.3)
        result = answer(nginx, context)
        if not str(result).startswith("200") or time.monotonic() > deadline:
            return result


def wait_until_refused(nginx: dict[str, str], context: ssl.SSLContext) -> int | str:
    """Ask nginx again (no reload from here) until this certificate is refused or time runs out."""
    deadline = time.monotonic() + REFUSAL_WAIT
    while True:
        result = answer(nginx, context)
        if not str(result).startswith("200") or time.monotonic() > deadline:
            return result
        time.sleep(0.05)


def start(running: Any) -> Any:
    return running.client("orchestrator").start_task("demo-agent", "call the API", [SCOPE], ttl_seconds=600)


def test_accepted_with_the_certificate_refused_without_and_after_completion(
    broker: Any, nginx_settings: dict[str, str]
) -> None:
    started = start(broker)
    nobody = ssl.create_default_context(cafile=nginx_settings["server_ca"])
    assert answer(nginx_settings, nobody) == 400  # no client certificate: nginx refuses
    with BrokerClient(broker.url).task(started.task_id, started.grant) as task:
        cert = task.client_certificate("x509", [SCOPE])
        context = cert.ssl_context(cafile=nginx_settings["server_ca"])
        accepted = answer(nginx_settings, context)
        assert accepted == "200 verified SUCCESS OU=" + started.task_id + ",CN=demo-agent"
    assert reload_until_refused(nginx_settings, context) in (400, "ConnectError", "ReadError")


def test_refused_after_expiry_without_any_revocation(broker: Any, nginx_settings: dict[str, str]) -> None:
    started = start(broker)
    with BrokerClient(broker.url).task(started.task_id, started.grant) as task:
        cert = task.client_certificate("x509", [SCOPE], ttl_seconds=3)
        issued = x509.load_pem_x509_certificate(cert.certificate_pem.encode())  # read once: no rotation
        context = cert.ssl_context(cafile=nginx_settings["server_ca"])
        assert str(answer(nginx_settings, context)).startswith("200")
        time.sleep(max(0.0, issued.not_valid_after_utc.timestamp() - time.time()) + 1.5)
        serial = issued.serial_number
        assert answer(nginx_settings, context) == 400  # expired: nginx refuses it by itself
        crl = x509.load_pem_x509_crl(Path(nginx_settings["crl"]).read_bytes())
        assert crl.get_revoked_certificate_by_serial_number(serial) is None  # no CRL needed


def test_a_leaked_private_key_found_by_the_scanner_kills_the_certificate(
    reloading_broker: Any, nginx_settings: dict[str, str], tmp_path: Path
) -> None:
    """The whole loop with nothing done by hand: the engine reloads nginx itself after revoking."""
    broker = reloading_broker
    started = start(broker)
    with BrokerClient(broker.url).task(started.task_id, started.grant) as task:
        cert = task.client_certificate("x509", [SCOPE])
        context = cert.ssl_context(cafile=nginx_settings["server_ca"])
        assert str(answer(nginx_settings, context)).startswith("200")
        leaked = tmp_path / "deploy" / "client.key"
        leaked.parent.mkdir()
        leaked.write_text("# copied here to debug the client\n" + cert.private_key_pem())
        env = {"JITSEC_HOME": str(tmp_path / "home"), "JITSEC_STATE_DIR": str(tmp_path / "state"),
               "JITSEC_BROKER_URL": broker.url, "JITSEC_BROKER_KEY": broker.env.keys["scanner"]}
        result = CliRunner().invoke(main, ["scan", str(leaked.parent), "-f", "jsonl", "--engine", "python"],
                                    env=env, catch_exceptions=False)
        assert result.exit_code == 1, result.output
        findings = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
        assert [f["broker"] for f in findings] == ["revoked"], findings
        assert "PRIVATE KEY-----\n" not in result.output
        lease = broker.broker.store.get_lease(cert.lease_id)
        assert lease.state.value == "revoked"
        assert wait_until_refused(nginx_settings, context) in (400, "ConnectError", "ReadError")
