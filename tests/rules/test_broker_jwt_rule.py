"""Every JWT the broker's jwt engine issues is a `broker-jwt` finding carrying the SHA-256 the broker
looks its lease up by, whatever its agent and scopes; a token whose claims no longer decode is not one;
and the validator answers any input with a bool."""

from __future__ import annotations

import base64
import random
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jitsec.broker.engines.base import IssueRequest
from jitsec.broker.engines.jwt import JwtEngine
from jitsec.broker.engines.jwt_keys import KeyRing
from jitsec.broker.model import new_id
from jitsec.scanner.engine import Scanner
from jitsec.scanner.fingerprint import Fingerprinter
from jitsec.scanner.ruleset import load_ruleset
from jitsec.scanner.validators import is_broker_jwt

from jitsec.kernel.credential_format import sha256_fingerprint
from jitsec.kernel.records import StreamOrigin

_NAME = st.from_regex(r"[a-z0-9][a-z0-9_.\-]{0,15}", fullmatch=True)
_SCOPES = st.lists(st.one_of(st.builds("{}:{}".format, _NAME, _NAME), st.builds("aud:{}".format, _NAME)),
                   min_size=1, max_size=4)
_AGENT = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.:@\-]{0,40}", fullmatch=True)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> JwtEngine:
    return JwtEngine(KeyRing(tmp_path_factory.mktemp("ring") / "keys"), "https://broker.example.test")


@pytest.fixture(scope="module")
def scanner() -> Scanner:
    return Scanner(load_ruleset(), Fingerprinter(b"k" * 32), engine="python")


def issue(engine: JwtEngine, agent: str, scopes: list[str]) -> str:
    request = IssueRequest(lease_id=new_id("lse"), agent=agent, task_id=new_id("tsk"), task_name="t",
                           scopes=tuple(scopes), ttl_seconds=300, expires_at=time.time() + 300)
    return engine.issue(request).secret


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(agent=_AGENT, scopes=_SCOPES, wrapper=st.sampled_from(["{}", "Authorization: Bearer {}",
                                                                '{{"access_token":"{}"}}', "x {} y"]))
def test_every_issued_jwt_is_a_broker_finding(engine: JwtEngine, scanner: Scanner, agent: str,
                                              scopes: list[str], wrapper: str) -> None:
    token = issue(engine, agent, scopes)
    found = [f for f in scanner.scan_bytes(wrapper.format(token).encode(), StreamOrigin("t"))
             if f.credential_sha256 is not None]
    assert [(f.rule_id, f.credential_sha256) for f in found] == [("broker-jwt", sha256_fingerprint(token))]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32))
def test_a_token_with_broken_claims_is_no_broker_finding(engine: JwtEngine, scanner: Scanner,
                                                         seed: int) -> None:
    header, claims, signature = issue(engine, "demo-agent", ["reports:read"]).split(".")
    rnd = random.Random(seed)
    cut = rnd.randrange(20, len(claims) - 8)
    broken = f"{header}.{claims[:cut]}.{signature}"
    assert not is_broker_jwt(broken)
    found = scanner.scan_bytes(f"token={broken}".encode(), StreamOrigin("t"))
    assert [f for f in found if f.rule_id == "broker-jwt"] == []


@given(st.text(max_size=300))
def test_the_validator_answers_any_text_with_a_bool(text: str) -> None:
    assert is_broker_jwt(text) in (True, False)


def test_a_foreign_issuer_s_at_jwt_is_not_the_broker_s(engine: JwtEngine) -> None:
    header, claims, signature = issue(engine, "demo-agent", ["reports:read"]).split(".")
    other = base64.urlsafe_b64encode(b'{"iss":"https://idp.example","exp":1,"jti":"abc"}').rstrip(b"=").decode()
    assert is_broker_jwt(f"{header}.{claims}.{signature}")
    assert not is_broker_jwt(f"{header}.{other}.{signature}")
