"""The default rule packs, checked as data: every rule's examples and counterexamples run through the
real engine in every syntactic context (raw, JSON log line, key=value, YAML, env, URL query, header).

There is no per-rule test: adding a rule means adding its examples to the pack.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
import regex
from hypothesis import given, settings
from hypothesis import strategies as st
from jitsec.scanner.engine import Scanner
from jitsec.scanner.fingerprint import Fingerprinter
from jitsec.scanner.rule_examples import check_rule_examples
from jitsec.scanner.ruleset import Rule, RuleSet, default_pack_paths, load_ruleset

from jitsec.kernel.credential_format import ALPHABET, CredentialKind, mint
from jitsec.kernel.records import StreamOrigin

_KEBAB = regex.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_DOCS = Path(__file__).resolve().parents[2] / "docs" / "rules.md"
_BROKER_RULES = {"broker-engine-token", "broker-task-token", "broker-postgres-password", "broker-credential",
                 "broker-jwt", "broker-kafka-password"}


def _default_rule_ids() -> list[str]:
    """Rule ids for parametrisation (read once at collection; the packs are plain data files)."""
    return [rule.id for rule in load_ruleset().rules]


@pytest.fixture(scope="module")
def ruleset() -> RuleSet:
    return load_ruleset()


@pytest.fixture(scope="module")
def fingerprinter() -> Fingerprinter:
    return Fingerprinter(b"rules-test-key-" + b"0" * 17)


@pytest.fixture(scope="module", params=["python", "hyperscan"])
def scanner(
    request: pytest.FixtureRequest,
    ruleset: RuleSet,
    fingerprinter: Fingerprinter,
    tmp_path_factory: pytest.TempPathFactory,
) -> Scanner:
    """Both matcher paths: the examples must hold whichever one finds the candidates."""
    cache = tmp_path_factory.mktemp(f"hs-cache-{request.param}")
    return Scanner(ruleset, fingerprinter, engine=request.param, cache_dir=cache)


@pytest.mark.parametrize("rule_id", _default_rule_ids())
def test_examples_found_and_counterexamples_silent_in_every_context(scanner: Scanner, rule_id: str) -> None:
    failures = check_rule_examples(scanner, scanner.ruleset.by_id(rule_id))
    assert not failures, "\n".join(str(failure) for failure in failures)


def test_default_packs_cover_at_least_80_formats(ruleset: RuleSet) -> None:
    assert len(default_pack_paths()) >= 10
    assert len(ruleset.rules) >= 80


def test_rule_ids_are_unique_kebab_case(ruleset: RuleSet) -> None:
    ids = [rule.id for rule in ruleset.rules]
    assert len(ids) == len(set(ids))
    assert all(_KEBAB.fullmatch(rule_id) for rule_id in ids)


def test_every_rule_has_examples_and_counterexamples(ruleset: RuleSet) -> None:
    lacking = [rule.id for rule in ruleset.rules if not rule.examples or not rule.counterexamples]
    assert lacking == []


def _raw_texts(rule: Rule) -> Iterator[tuple[str, str]]:
    for example in rule.examples:
        assert example.secret is not None
        yield example.secret, example.text if example.text is not None else f"{example.key}={example.secret}"


def test_a_keyword_occurs_in_every_example_match(ruleset: RuleSet) -> None:
    """The prefilter contract: every true match contains one of the rule's keywords."""
    problems = []
    for rule in ruleset.rules:
        for secret, text in _raw_texts(rule):
            matches = [m for m in rule.pattern.finditer(text) if m.group("secret") == secret]
            if not matches:
                problems.append(f"{rule.id}: the regex does not match its example's raw text")
            elif not any(k in m.group(0).lower() for m in matches for k in rule.keywords):
                problems.append(f"{rule.id}: no keyword inside the match")
    assert problems == []


def test_no_rule_falls_back_from_hyperscan(scanner: Scanner) -> None:
    """Every rule compiles into the Hyperscan database (a fallback rule is scanned by keyword, slower)."""
    if scanner.engine != "hyperscan":
        pytest.skip("the pure-Python path has no database")
    assert [scanner.ruleset.rules[i].id for i in scanner.matcher.fallback] == []


def test_docs_list_every_rule(ruleset: RuleSet) -> None:
    text = _DOCS.read_text(encoding="utf-8")
    missing = [rule.id for rule in ruleset.rules if f"`{rule.id}`" not in text]
    assert missing == []


# -- the broker's own formats: every minted credential is found, a wrong checksum never is -----------

_PREFIXES = st.one_of(
    st.sampled_from([kind.prefix for kind in CredentialKind]),
    st.from_regex(r"jit[a-z]{1,6}_", fullmatch=True),
)


def _broker_findings(scanner: Scanner, text: str) -> list:
    return [f for f in scanner.scan_bytes(text.encode(), StreamOrigin("t")) if f.rule_id in _BROKER_RULES]


@settings(max_examples=60, deadline=None)
@given(
    prefix=_PREFIXES,
    seed=st.integers(0, 2**32),
    wrapper=st.sampled_from(["{}", "token={}", '{{"t":"{}"}}', "x {} y"]),
)
def test_every_minted_credential_is_found(
    scanner: Scanner, fingerprinter: Fingerprinter, prefix: str, seed: int, wrapper: str
) -> None:
    credential = mint(prefix, randbelow=random.Random(seed).randrange)
    found = _broker_findings(scanner, wrapper.format(credential))
    assert [f.fingerprint for f in found] == [fingerprinter.fingerprint(credential)]
    assert found[0].credential_sha256 is not None


@settings(max_examples=60, deadline=None)
@given(prefix=_PREFIXES, seed=st.integers(0, 2**32), position=st.integers(0, 5), shift=st.integers(1, 61))
def test_a_wrong_checksum_is_never_a_broker_finding(
    scanner: Scanner, prefix: str, seed: int, position: int, shift: int
) -> None:
    credential = mint(prefix, randbelow=random.Random(seed).randrange)
    check_at = len(credential) - 6 + position
    wrong = ALPHABET[(ALPHABET.index(credential[check_at]) + shift) % 62]
    tampered = credential[:check_at] + wrong + credential[check_at + 1 :]
    assert _broker_findings(scanner, f"token={tampered}") == []
