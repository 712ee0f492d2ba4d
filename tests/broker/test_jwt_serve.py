"""The jwt engine as a resource server meets it: `jitsec broker init` + `jitsec broker serve` in a real
process, tokens verified with PyJWT against the JWKS fetched over HTTP, a key rotated with the CLI while
the broker runs, and revocation seen by introspection."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import jwt
import pytest
from jitsec.broker.client import BrokerClient

from tests.broker.test_serve_cli import free_port

JITSEC = [os.path.join(os.path.dirname(sys.executable), "jitsec")]


@dataclass
class Served:
    url: str
    config: Path
    keys: dict[str, str]
    output: list[str]


@contextmanager
def running_broker(tmp_path: Path) -> Iterator[Served]:
    config = tmp_path / "broker.toml"
    init = subprocess.run([*JITSEC, "broker", "init", "--config", str(config), "--json"],
                          capture_output=True, text=True, check=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    text = config.read_text()
    assert "[policy.engines.jwt]" in text  # the example policy lets demo-agent use the jwt engine
    config.write_text(text.replace('# public_url = "https://broker.example.com"', f'public_url = "{url}"'))
    server = subprocess.Popen([*JITSEC, "broker", "serve", "--config", str(config), "--port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    served = Served(url, config, json.loads(init.stdout)["keys"], [])
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and server.poll() is None, "broker did not start"
            time.sleep(0.1)
        yield served
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            output, _ = server.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            output, _ = server.communicate()
        served.output.append(output)


def verified(token: str, jwks_uri: str, issuer: str) -> dict[str, object]:
    """What a resource server does: fetch the JWKS (PyJWT's client), pick the key by kid, verify."""
    key = jwt.PyJWKClient(jwks_uri, cache_keys=False).get_signing_key_from_jwt(token)
    return jwt.decode(token, key, algorithms=["ES256"], audience="reports", issuer=issuer,
                      options={"require": ["exp", "iat", "jti", "sub", "client_id"]})


@pytest.mark.slow
def test_tokens_verify_against_the_published_jwks_across_a_rotation_and_die_at_introspection(
    tmp_path: Path,
) -> None:
    with running_broker(tmp_path) as broker:
        held = exercise(broker)
    output = broker.output[0]
    assert "Application shutdown complete" in output
    for secret in [*held, *broker.keys.values()]:
        assert secret not in output


def exercise(broker: Served) -> list[str]:
    """Issue, verify, rotate, verify again, complete; returns the tokens issued."""
    metadata = httpx.get(f"{broker.url}/.well-known/oauth-authorization-server").json()
    assert metadata["issuer"] == broker.url
    jwks_uri = metadata["jwks_uri"]
    assert jwks_uri == f"{broker.url}/.well-known/jwks.json"
    assert httpx.get(jwks_uri).headers["cache-control"].startswith("public, max-age=")
    with BrokerClient(broker.url, key=broker.keys["orchestrator"]) as orchestrator:
        started = orchestrator.start_task("demo-agent", "report", ["reports:read"])
    resource = BrokerClient(broker.url, key=broker.keys["resource"])
    with BrokerClient(broker.url) as agent, agent.task(started.task_id, started.grant) as task:
        first = task.secret("jwt", ["reports:read"])
        claims = verified(first.value, jwks_uri, broker.url)
        assert claims["jti"] == first.lease_id and claims["sub"] == "demo-agent"
        assert claims["scope"] == "reports:read" and claims["exp"] <= first.expires_at
        assert resource.introspect(first.value)["active"] is True

        rotated = subprocess.run([*JITSEC, "broker", "jwt", "rotate-key", "--config", str(broker.config),
                                  "--json"], capture_output=True, text=True, check=True)
        keys = json.loads(rotated.stdout)
        assert keys["retired"] == jwt.get_unverified_header(first.value)["kid"]
        deadline = time.monotonic() + 10
        while True:  # the running broker notices the rotation within a second
            second = task.secret("jwt", ["reports:read"])
            if jwt.get_unverified_header(second.value)["kid"] == keys["current"]:
                break
            assert time.monotonic() < deadline, "the broker kept signing with the retired key"
            time.sleep(0.2)
        published = [key["kid"] for key in httpx.get(jwks_uri).json()["keys"]]
        assert published == [keys["current"], keys["retired"]]
        assert verified(second.value, jwks_uri, broker.url)["jti"] == second.lease_id
        assert verified(first.value, jwks_uri, broker.url)["jti"] == first.lease_id  # still verifiable
        held = [first.value, second.value]
    with resource:
        for token in held:  # the task completed: revoked, and introspection says so
            assert resource.introspect(token) == {"active": False}
    key = jwt.PyJWKClient(jwks_uri).get_signing_key_from_jwt(held[1])
    with pytest.raises(jwt.InvalidAudienceError):  # a token for reports is no token for billing
        jwt.decode(held[1], key, algorithms=["ES256"], audience="billing")
    return held
