"""The jwt engine on its own: RFC 9068 claims, the scope grammar, the key ring and its rotation; every
token checked with PyJWT against the JWKS the engine publishes."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import jwt
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from jitsec.broker.engines.base import EngineSettings, IssueRequest
from jitsec.broker.engines.jwt import JWKS_PATH, METADATA_PATH, JwtEngine, create
from jitsec.broker.engines.jwt_claims import audiences, validate_scopes
from jitsec.broker.engines.jwt_keys import KeyRing
from jitsec.broker.errors import ConfigError, ScopeError

from jitsec.cli import main

ISSUER = "https://broker.example.test"


def request(scopes: tuple[str, ...], ttl: int = 120) -> IssueRequest:
    return IssueRequest(lease_id="lse_0123456789abcdef01234567", agent="demo-agent", task_id="tsk_1",
                        task_name="t", scopes=scopes,
                        ttl_seconds=ttl, expires_at=time.time() + ttl)


def verify(engine: JwtEngine, token: str, audience: str) -> dict[str, object]:
    header = jwt.get_unverified_header(token)
    keys = {key["kid"]: key for key in engine.jwks()["keys"]}
    key = jwt.PyJWK(keys[header["kid"]])
    return jwt.decode(token, key, algorithms=["ES256"], audience=audience, issuer=ISSUER,
                      options={"require": ["iss", "sub", "aud", "exp", "iat", "jti", "client_id"]})


@pytest.fixture
def engine(tmp_path: Path) -> JwtEngine:
    return JwtEngine(KeyRing(tmp_path / "keys"), ISSUER)


def test_a_token_carries_the_rfc_9068_claims_and_verifies_against_the_jwks(engine: JwtEngine) -> None:
    asked = request(("reports:read", "reports:write"), ttl=120)
    credential = engine.issue(asked)
    claims = verify(engine, credential.secret, "reports")
    assert jwt.get_unverified_header(credential.secret)["typ"] == "at+jwt"
    assert claims["sub"] == claims["client_id"] == "demo-agent"
    assert claims["scope"] == "reports:read reports:write"
    assert claims["jti"] == credential.handle == asked.lease_id
    assert claims["exp"] <= asked.expires_at < claims["exp"] + 1  # never after the lease, to the second
    assert claims["iat"] == claims["nbf"] and asked.expires_at - 121 <= claims["iat"] <= time.time()


def test_audiences_come_from_aud_scopes_else_from_the_resources_named(engine: JwtEngine) -> None:
    explicit = engine.issue(request(("aud:https://api.example.test/v2", "aud:ledger", "ledger:read"))).secret
    claims = verify(engine, explicit, "ledger")
    assert claims["aud"] == ["https://api.example.test/v2", "ledger"] and claims["scope"] == "ledger:read"
    only_aud = verify(engine, engine.issue(request(("aud:ledger",))).secret, "ledger")
    assert "scope" not in only_aud
    with pytest.raises(jwt.InvalidAudienceError):
        verify(engine, engine.issue(request(("reports:read",))).secret, "ledger")


@pytest.mark.parametrize("scope", ["reports", "Reports:read", "aud:", "aud:http://plain.example", "reports:*",
                                   "aud:Upper", "reports read", "aud:https://x.example/a?b=c"])
def test_the_scope_grammar_refuses(scope: str) -> None:
    with pytest.raises(ScopeError):
        validate_scopes([scope])


def test_the_scope_grammar_refuses_an_empty_request() -> None:
    with pytest.raises(ScopeError, match="at least one scope"):
        validate_scopes([])


_NAME = st.from_regex(r"[a-z0-9][a-z0-9_.\-]{0,20}", fullmatch=True)


@settings(max_examples=200)
@given(st.lists(st.one_of(st.builds("{}:{}".format, _NAME, _NAME), st.builds("aud:{}".format, _NAME)),
                min_size=1, max_size=6))
def test_every_well_formed_scope_set_is_accepted_and_gives_an_audience(scopes: list[str]) -> None:
    validate_scopes(scopes)
    found = audiences(scopes)
    assert found and len(found) == len(set(found))
    named = [s[4:] for s in scopes if s.startswith("aud:")]
    assert found == (list(dict.fromkeys(named)) or list(dict.fromkeys(s.split(":")[0] for s in scopes)))


@settings(max_examples=200)
@given(st.text(max_size=60))
def test_the_scope_parser_never_fails_other_than_with_a_scope_error(scope: str) -> None:
    try:
        validate_scopes([scope])
    except ScopeError as error:
        assert "scope" in str(error)


def test_rotation_keeps_the_old_key_published_until_its_last_token_expires(tmp_path: Path) -> None:
    now = [1_000_000.0]
    ring = KeyRing(tmp_path / "keys")
    engine = JwtEngine(ring, ISSUER, clock=lambda: now[0])
    old_kid = engine.jwks()["keys"][0]["kid"]
    state, retired = ring.rotate(now[0], keep_seconds=600)
    assert retired.jwk["kid"] == old_kid != state.signer.key_id
    assert not (tmp_path / "keys" / f"{old_kid}.pem").exists(), "a retired private key is deleted"
    assert (tmp_path / "keys" / f"{state.signer.key_id}.pem").stat().st_mode & 0o777 == 0o600
    other = JwtEngine(ring, ISSUER, clock=lambda: now[0])  # another process, started after the rotation
    assert [k["kid"] for k in other.jwks()["keys"]] == [state.signer.key_id, old_kid]
    now[0] += 601
    assert [k["kid"] for k in other.jwks()["keys"]] == [state.signer.key_id]


def test_a_running_engine_signs_with_the_new_key_after_a_rotation_elsewhere(
    engine: JwtEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = jwt.get_unverified_header(engine.issue(request(("reports:read",))).secret)["kid"]
    state, _ = KeyRing(tmp_path / "keys").rotate(time.time(), keep_seconds=600)
    monkeypatch.setattr("jitsec.broker.engines.jwt.RELOAD_SECONDS", 0.0)
    token = engine.issue(request(("reports:read",))).secret
    assert jwt.get_unverified_header(token)["kid"] == state.signer.key_id != before
    assert verify(engine, token, "reports")["jti"]


def test_a_broken_ring_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    folder = tmp_path / "keys"
    KeyRing(folder).open(time.time())
    (folder / "ring.json").write_text(json.dumps({"version": 1, "current": {"kid": "x", "file": "x.pem"}}))
    with pytest.raises(ConfigError, match=r"x\.pem"):
        KeyRing(folder).read()


def test_the_factory_reads_the_keys_folder_relative_to_the_config(tmp_path: Path) -> None:
    settings = EngineSettings(name="jwt", options={"keys": "ring"}, public_url=ISSUER, config_dir=tmp_path)
    engine = create(settings)
    assert (tmp_path / "ring" / "ring.json").exists() and engine.issuer == ISSUER
    assert oct((tmp_path / "ring").stat().st_mode & 0o777) == oct(0o700)
    with pytest.raises(ConfigError, match="unknown key"):
        create(EngineSettings(name="jwt", options={"audience": "x"}, config_dir=tmp_path))


def test_the_published_documents_are_the_jwks_and_the_oauth_metadata(engine: JwtEngine) -> None:
    documents = {document.path: json.loads(document.render()) for document in engine.public_documents()}
    assert documents[JWKS_PATH] == engine.jwks() and "d" not in documents[JWKS_PATH]["keys"][0]
    metadata = documents[METADATA_PATH]
    assert metadata["issuer"] == ISSUER and metadata["jwks_uri"] == ISSUER + JWKS_PATH
    assert metadata["introspection_endpoint"] == ISSUER + "/v1/introspect"


def test_no_private_key_material_is_world_readable(tmp_path: Path) -> None:
    KeyRing(tmp_path / "keys").open(time.time())
    for path in (tmp_path / "keys").iterdir():
        if path.suffix == ".pem":
            assert os.stat(path).st_mode & 0o077 == 0


def test_rotate_key_and_keys_from_the_command_line(tmp_path: Path) -> None:
    config = tmp_path / "broker.toml"
    runner = CliRunner()
    assert runner.invoke(main, ["broker", "init", "--config", str(config)]).exit_code == 0
    listed = runner.invoke(main, ["broker", "jwt", "keys", "--config", str(config), "--json"])
    [first] = json.loads(listed.output)["keys"]
    rotated = runner.invoke(main, ["broker", "jwt", "rotate-key", "--config", str(config), "--json"])
    assert rotated.exit_code == 0, rotated.output
    answer = json.loads(rotated.output)
    assert answer["retired"] == first["kid"] != answer["current"]
    assert answer["retired_published_until"] > time.time() + 900  # max_ttl_seconds of the example config
    listed = runner.invoke(main, ["broker", "jwt", "keys", "--config", str(config)])
    assert f"{answer['retired']}  retired, published until" in listed.output
    wrong = runner.invoke(main, ["broker", "jwt", "rotate-key", "--config", str(config), "--engine", "token"])
    assert wrong.exit_code == 2 and "no [engines.token] section of kind jwt" in wrong.output
