"""The x509 engine through the broker's HTTP API and the SDK: the agent's key stays in the agent, the
certificate matches it, rotation certifies a new key, completion revokes into the CRL the broker
publishes unauthenticated, and policy limits the names."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from jitsec.broker.client import BrokerAPIError, BrokerClient

from jitsec.kernel.credential_format import public_key_fingerprint, sha256_fingerprint
from jitsec.testing import ManualClock

SCOPE = "x509:name:api.internal"


def x509_broker(serve: Callable[..., Any], env: Any, tmp_path: Path) -> Any:
    config = env.config(
        engines={"x509": {"state_dir": str(tmp_path / "ca"), "default_ttl_seconds": 120,
                          "max_ttl_seconds": 600}},
        policy=[{"agent": "demo-agent", "max_task_ttl_seconds": 900,
                 "engines": {"x509": {"scopes": ["x509:name:*.internal"], "max_ttl_seconds": 600}}}],
    )
    return serve(config)


def start(running: Any, scopes: list[str]) -> Any:
    return running.client("orchestrator").start_task("demo-agent", "fetch report", scopes, ttl_seconds=600)


def crl_serials(url: str) -> set[int]:
    crl = x509.load_der_x509_crl(httpx.get(f"{url}/v1/x509/crl").content)
    return {entry.serial_number for entry in crl}


def test_the_sdk_certificate_matches_its_in_memory_key_and_completion_revokes_it(
    serve: Callable[..., Any], env: Any, tmp_path: Path
) -> None:
    running = x509_broker(serve, env, tmp_path)
    started = start(running, [SCOPE])
    ca = httpx.get(f"{running.url}/v1/x509/ca.pem")  # no key: public material
    assert ca.status_code == 200 and ca.text.startswith("-----BEGIN CERTIFICATE-----")
    with BrokerClient(running.url).task(started.task_id, started.grant) as task:
        cert = task.client_certificate("x509", [SCOPE])
        pem = cert.certificate_pem
        certificate = x509.load_pem_x509_certificate(pem.encode())
        certificate.verify_directly_issued_by(x509.load_pem_x509_certificate(ca.content))
        assert certificate.public_key() == cert.private_key().public_key()
        assert cert.ca_pem == ca.text
        assert "PRIVATE" not in repr(cert)
        lease = running.broker.store.get_lease(cert.lease_id)
        spki = certificate.public_key().public_bytes(serialization.Encoding.DER,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo)
        assert lease.fingerprint == public_key_fingerprint(spki) != sha256_fingerprint(pem)
        assert certificate.serial_number not in crl_serials(running.url)
        context = cert.ssl_context()  # loads the pair (ssl refuses a key that does not match)
        assert context.verify_mode.name == "CERT_REQUIRED"
    with pytest.raises(RuntimeError, match="purged"):  # completion took the certificate out of memory
        cert.private_key()
    assert certificate.serial_number in crl_serials(running.url)
    assert running.broker.store.get_lease(cert.lease_id).state.value == "revoked"


def test_rotation_certifies_a_new_key_and_revokes_the_old_certificate(
    serve: Callable[..., Any], env: Any, tmp_path: Path
) -> None:
    running = x509_broker(serve, env, tmp_path)
    started = start(running, [SCOPE])
    clock = ManualClock()
    with BrokerClient(running.url, clock=clock).task(started.task_id, started.grant) as task:
        cert = task.client_certificate("x509", [SCOPE], ttl_seconds=100)
        first = x509.load_pem_x509_certificate(cert.certificate_pem.encode())
        first_lease = cert.lease_id
        clock.now += 81  # past 80% of its life: the next read rotates, on a new key
        second = x509.load_pem_x509_certificate(cert.certificate_pem.encode())
        assert cert.lease_id != first_lease
        assert second.public_key() != first.public_key()
        assert second.public_key() == cert.private_key().public_key()
        assert first.serial_number in crl_serials(running.url)
        assert second.serial_number not in crl_serials(running.url)


def test_policy_limits_the_names_and_a_missing_csr_is_refused(
    serve: Callable[..., Any], env: Any, tmp_path: Path
) -> None:
    running = x509_broker(serve, env, tmp_path)
    with pytest.raises(BrokerAPIError) as denied:
        start(running, ["x509:name:api.example"])
    assert denied.value.status == 403
    started = start(running, [SCOPE])
    with BrokerClient(running.url).task(started.task_id, started.grant) as task:
        with pytest.raises(BrokerAPIError) as missing:
            task.secret("x509", [SCOPE])
        assert missing.value.status == 422 and missing.value.code == "invalid_public_key"
        with pytest.raises(BrokerAPIError) as bad_scope:
            task.client_certificate("x509", ["x509:name:*.internal"])
        assert bad_scope.value.code == "invalid_scope"


def test_without_an_x509_engine_the_crl_route_says_so(serve: Callable[..., Any]) -> None:
    running = serve()
    answer = httpx.get(f"{running.url}/v1/x509/crl")
    assert answer.status_code == 404 and answer.json()["error"] == "unknown_engine"
