"""The token engine's output is exactly the documented format, and the scanner recognises every one
(tests may import the scanner; the broker never does)."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jitsec.broker.engines.base import IssueRequest
from jitsec.broker.engines.token import TokenEngine, UrandomDigits
from jitsec.broker.errors import ScopeError

from jitsec.kernel.credential_format import BODY_LENGTH, CredentialKind, checksum, parse

REQUEST = IssueRequest(
    lease_id="lse_1",
    agent="a",
    task_id="tsk_1",
    task_name="t",
    scopes=("r:x",),
    ttl_seconds=60,
    expires_at=0.0,
)


@given(st.randoms(use_true_random=False))
def test_minted_tokens_have_the_documented_shape(rnd: random.Random) -> None:
    secret = TokenEngine(randbelow=rnd.randrange).issue(REQUEST).secret
    parsed = parse(secret)
    assert parsed is not None and parsed.kind is CredentialKind.ENGINE_TOKEN
    assert len(secret) == 4 + BODY_LENGTH + 6 and parsed.check == checksum(parsed.body)


@settings(max_examples=50)
@given(st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=3))
def test_scope_validation_accepts_only_resource_action_shapes(scopes: list[str]) -> None:
    engine = TokenEngine()
    good = all(
        s.replace(":", "").replace("_", "").replace(".", "").replace("-", "").isascii() for s in scopes
    )
    try:
        engine.validate_scopes(scopes)
    except ScopeError as error:
        assert "resource:action" in str(error)
    else:
        assert good


def test_the_scanner_finds_every_minted_token_and_rejects_corrupted_ones(
    last_character_changed: Callable[[str], str],
) -> None:
    engine_module = pytest.importorskip("jitsec.scanner.engine")
    ruleset_module = pytest.importorskip("jitsec.scanner.ruleset")
    fingerprint_module = pytest.importorskip("jitsec.scanner.fingerprint")
    model = pytest.importorskip("jitsec.kernel.records")
    scanner = engine_module.Scanner(
        ruleset_module.load_ruleset(), fingerprint_module.Fingerprinter(b"k" * 32), engine="python"
    )
    engine = TokenEngine()
    tokens = [engine.issue(REQUEST).secret for _ in range(200)]
    text = "\n".join(f"2026-01-01 INFO call with Authorization: Bearer {token}" for token in tokens)
    findings = scanner.scan_bytes(text.encode(), model.StreamOrigin("log"))
    broker_findings = [f for f in findings if f.credential_sha256]
    assert len(broker_findings) == len(tokens)
    corrupted = [last_character_changed(token) for token in tokens]
    text = "\n".join(f"token={token}" for token in corrupted)
    assert not [
        f for f in scanner.scan_bytes(text.encode(), model.StreamOrigin("log")) if f.credential_sha256
    ]


def test_urandom_digits_are_in_range_and_roughly_uniform() -> None:
    digits = UrandomDigits()
    counts = [0] * 62
    draws = 62 * 500
    for _ in range(draws):
        counts[digits(62)] += 1
    expected = draws / 62
    chi_square = sum((c - expected) ** 2 / expected for c in counts)
    assert chi_square < 130  # 61 degrees of freedom: p < 1e-6 of a false alarm
    assert 0 <= digits(10) < 10  # other bounds fall back to secrets.randbelow
