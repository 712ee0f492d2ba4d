"""The jwt engine behind the broker's API, in process: the published documents, introspection of a
JWT, and no token in the store's files, the logs or the audit (the scanner, a third pair of eyes, finds
no broker credential in them either)."""

from __future__ import annotations

import json
import logging

import httpx
import jwt
import pytest
from jitsec.broker.api.app import create_app
from jitsec.broker.audit import record_to_dict
from jitsec.broker.client import BrokerAPIError
from jitsec.broker.errors import ConfigError
from jitsec.broker.runtime import build_broker
from jitsec.scanner.engine import Scanner
from jitsec.scanner.fingerprint import Fingerprinter
from jitsec.scanner.ruleset import load_ruleset

from jitsec.kernel.records import StreamOrigin


@pytest.fixture
def running(serve, env):
    config = env.config(
        engines={"token": {}, "jwt": {"keys": str(env.tmp / "jwt-keys"), "max_ttl_seconds": 600}},
        policy=[{"agent": "demo-agent", "engines": {"jwt": {"scopes": ["reports:*", "aud:ledger"]}}}],
    )
    return serve(config)


def test_jwts_are_introspected_published_and_never_kept(running, env, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.WARNING, logger="httpx")
    keys = httpx.get(f"{running.url}/.well-known/jwks.json").json()
    metadata = httpx.get(f"{running.url}/.well-known/oauth-authorization-server").json()
    assert metadata["issuer"] == running.broker.engines["jwt"].issuer
    orchestrator, resource = running.client("orchestrator"), running.client("resource")
    started = orchestrator.start_task("demo-agent", "report", ["reports:read", "aud:ledger"])
    tokens = []
    with running.client().task(started.task_id, started.grant) as task:
        for scopes in (["reports:read"], ["aud:ledger", "reports:read"]):
            secret = task.secret("jwt", scopes)
            tokens.append(secret.value)
            assert resource.introspect(secret.value)["engine"] == "jwt"
        key = jwt.PyJWK(keys["keys"][0])
        claims = jwt.decode(tokens[1], key, algorithms=["ES256"], audience="ledger",
                            issuer=metadata["issuer"])
        assert claims["scope"] == "reports:read"
        with pytest.raises(BrokerAPIError) as refused:  # a JWT pasted where a scope goes
            task.secret("jwt", [tokens[0]])
        assert refused.value.status == 422 and tokens[0] not in str(refused.value)
        with pytest.raises(BrokerAPIError, match="aud:NAME"):
            task.secret("jwt", ["reports"])
    assert [resource.introspect(token) for token in tokens] == [{"active": False}] * 2
    audit = "\n".join(json.dumps(record_to_dict(r)) for r in running.broker.store.audit_records())
    running.broker.close()
    blobs = {path.name: path.read_bytes() for path in env.tmp.iterdir() if path.is_file()}
    blobs |= {"logs": caplog.text.encode(), "audit": audit.encode()}
    scanner = Scanner(load_ruleset(), Fingerprinter(b"k" * 32), engine="python")
    control = scanner.scan_bytes(f"token={tokens[0]}".encode(), StreamOrigin("control"))
    assert [f.rule_id for f in control] == ["broker-jwt"]
    for name, data in blobs.items():
        text = data.decode("latin-1")
        for token in tokens:
            assert token not in text and token.rsplit(".", 1)[1] not in text, f"a token is in {name}"
        assert not [f for f in scanner.scan_bytes(data, StreamOrigin(name)) if f.rule_id == "broker-jwt"]


def test_an_agent_rotates_its_jwt_mid_task_and_the_old_one_dies(running) -> None:
    started = running.client("orchestrator").start_task("demo-agent", "report", ["reports:read"])
    resource = running.client("resource")
    with running.client().task(started.task_id, started.grant) as task:
        secret = task.secret("jwt", ["reports:read"])
        old_token, old_lease = secret.value, secret.lease_id
        secret.rotate()
        assert secret.lease_id != old_lease and secret.value != old_token
        assert jwt.decode(secret.value, options={"verify_signature": False})["jti"] == secret.lease_id
        assert resource.introspect(old_token) == {"active": False}
        assert resource.introspect(secret.value)["active"] is True


def test_two_engines_publishing_the_same_path_stop_the_broker(env) -> None:
    config = env.config(engines={"token": {}, "jwt": {"keys": str(env.tmp / "a")},
                                 "jwt-long": {"kind": "jwt", "keys": str(env.tmp / "b")}})
    broker = build_broker(config)
    try:
        with pytest.raises(ConfigError, match=r"engines\.jwt and engines\.jwt-long both publish"):
            create_app(broker)
    finally:
        broker.close()
