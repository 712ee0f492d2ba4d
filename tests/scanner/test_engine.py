from __future__ import annotations

import hashlib
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from jitsec.scanner.engine import Scanner
from jitsec.scanner.ruleset import RuleSet, load_ruleset

from jitsec.kernel.credential_format import CredentialKind, encode_base62, mint, sha256_fingerprint
from jitsec.kernel.records import BrokerStatus, Confidence, FileOrigin, Severity, StreamOrigin

AWS = "AKIA2OGYBAH6STMMNXNN"
RANDOM_PART = "bT3sTqAQlPzx7YnM9cKdEfGh12jk3L"
GITHUB = f"ghp_{RANDOM_PART}{encode_base62(zlib.crc32(RANDOM_PART.encode()), 6)}"
PEM_BODY = (
    "MIIEowIBAAKCAQEA2a2rwplBQLF29amygykEMmYz0+Kcj3bKBp29P2rFj7QNkLx4\n"
    "wmAXgIHOeaR6Cq3T1y0kTmKsH0VwZ1Q6pR8hNjXL5FvJ3l9yT0gG2yqPwq7S8aYt"
)
PEM = f"-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}\n-----END RSA PRIVATE KEY-----"


def scan(scanner: Scanner, text: str, origin=None):
    return scanner.scan_bytes(text.encode(), origin or StreamOrigin())


def test_finds_and_locates_a_secret(scanner: Scanner) -> None:
    findings = scan(scanner, f"first line\n  key: {AWS} # aws\n")
    assert len(findings) == 1
    finding = findings[0]
    assert finding.rule_id == "sample-aws-access-key-id"
    assert (finding.line, finding.column, finding.offset) == (2, 8, 18)
    assert finding.severity is Severity.HIGH
    assert finding.confidence is Confidence.HEURISTIC
    assert finding.fingerprint == scanner.fingerprinter.fingerprint(AWS)
    assert AWS not in finding.preview and finding.preview.startswith("AKIA")
    assert finding.credential_sha256 is None and finding.broker is None


def test_offset_and_line_bases_are_applied(scanner: Scanner) -> None:
    finding = scanner.scan_bytes(f"x {AWS}".encode(), StreamOrigin(), offset=1000, line=41)[0]
    assert (finding.line, finding.column, finding.offset) == (41, 3, 1002)


def test_broker_credentials_carry_their_sha256(scanner: Scanner) -> None:
    token = mint(CredentialKind.TASK_TOKEN)
    finding = scan(scanner, f'{{"auth":"{token}"}}')[0]
    assert finding.rule_id == "sample-broker-token"
    assert finding.confidence is Confidence.STRUCTURAL
    assert finding.credential_sha256 == sha256_fingerprint(token)
    assert finding.broker is BrokerStatus.UNKNOWN


def test_wrong_checksums_are_not_findings(
    scanner: Scanner, last_character_changed: Callable[[str], str]
) -> None:
    token = mint(CredentialKind.ENGINE_TOKEN)
    bad = last_character_changed(token)
    bad_github = last_character_changed(GITHUB)
    assert scan(scanner, f"t={bad} g={bad_github}") == []
    assert [f.rule_id for f in scan(scanner, f"g={GITHUB}")] == ["sample-github-token"]


def test_live_fingerprints_confirm_non_broker_candidates(ruleset: RuleSet, fingerprinter) -> None:
    live = {sha256_fingerprint(AWS)}
    scanner = Scanner(ruleset, fingerprinter, engine="python", live_fingerprints=live.__contains__)
    finding = scan(scanner, f"k={AWS}")[0]
    assert finding.confidence is Confidence.CONFIRMED
    assert finding.credential_sha256 == sha256_fingerprint(AWS)
    other = scan(scanner, "k=AKIAZZZZZZZZZZZZZZZ2")[0]
    assert other.confidence is Confidence.HEURISTIC and other.credential_sha256 is None


@pytest.mark.parametrize(
    "line",
    [
        "password=${DB_PASSWORD}",
        "password=<redacted>",
        "password=xxxxxxxxxxxx",
        "password=changeme123",
        "password: 123e4567-e89b-12d3-a456-426614174000",
        "password=aaaaaaaaaaaa",  # below the rule's entropy
        "password=ABCDEFGHIJKLMNOP",  # a sequence
        "aws_key=AKIAIOSFODNN7EXAMPLE",  # stopword of the AWS rule
    ],
)
def test_hard_negatives_are_dropped(scanner: Scanner, line: str) -> None:
    assert scan(scanner, line) == []


def test_digests_named_as_such_are_dropped(scanner: Scanner) -> None:
    assert scan(scanner, "commit password=Q9x7Lm2Vz8Kp") != []
    assert scan(scanner, "sha256: password=Q9x7Lm2Vz8Kp") != []  # the context must touch the value
    assert scan(scanner, "integrity=sha512-Q9x7Lm2Vz8KpQ9x7") == []


def test_pragma_comments_silence_a_line_of_a_file(scanner: Scanner) -> None:
    source = FileOrigin("src/settings.py")
    assert scan(scanner, f"key = '{AWS}'  # pragma: allowlist secret", source) == []
    assert scan(scanner, f"# pragma: allowlist nextline secret\nkey = '{AWS}'", source) == []
    assert len(scan(scanner, f"# pragma: allowlist nextline secret\n\nkey = '{AWS}'", source)) == 1


def test_a_pragma_in_a_stream_or_on_a_broker_credential_hides_nothing(scanner: Scanner) -> None:
    """A log line is whatever its writer (a hostile agent) put there; a broker credential always
    reaches the broker, wherever it is."""
    assert len(scan(scanner, f"key = '{AWS}'  # pragma: allowlist secret", StreamOrigin("-"))) == 1
    token = mint(CredentialKind.ENGINE_TOKEN)
    for origin in (StreamOrigin("-"), FileOrigin("notes.md")):
        found = scan(scanner, f"Authorization: Bearer {token}  # pragma: allowlist secret", origin)
        assert [f.rule_id for f in found] == ["sample-broker-token"]


def test_a_pragma_does_not_hide_a_live_credential_of_any_shape(ruleset: RuleSet, fingerprinter) -> None:
    live = {sha256_fingerprint(AWS)}
    scanner = Scanner(ruleset, fingerprinter, engine="python", live_fingerprints=live.__contains__)
    [finding] = scan(scanner, f"key = '{AWS}'  # pragma: allowlist secret", FileOrigin("a.py"))
    assert finding.confidence is Confidence.CONFIRMED


def test_detect_secrets_hashes_suppress_candidates(ruleset: RuleSet, fingerprinter) -> None:
    sha1 = hashlib.sha1(AWS.encode(), usedforsecurity=False).hexdigest()
    scanner = Scanner(ruleset, fingerprinter, engine="python", ignored_sha1=frozenset({sha1}))
    assert scan(scanner, f"k={AWS}") == []
    assert len(scan(scanner, "k=AKIAZZZZZZZZZZZZZZZ2")) == 1
    token = mint(CredentialKind.ENGINE_TOKEN)  # a baseline never hides a broker credential
    accepting = Scanner(ruleset, fingerprinter, engine="python", ignored_sha1=frozenset(
        {hashlib.sha1(token.encode(), usedforsecurity=False).hexdigest()}))
    assert len(scan(accepting, f"k={token}")) == 1


def test_lock_files_silence_heuristic_rules_only(scanner: Scanner) -> None:
    origin = FileOrigin("web/package-lock.json")
    token = mint(CredentialKind.ENGINE_TOKEN)
    findings = scan(scanner, f'"integrity": "password=Q9x7Lm2Vz8Kp" {token}', origin)
    assert [f.rule_id for f in findings] == ["sample-broker-token"]


def test_multiline_pem_is_one_finding_at_its_first_line(scanner: Scanner) -> None:
    findings = scan(scanner, f"config:\n{PEM}\ndone\n")
    assert len(findings) == 1
    assert (findings[0].rule_id, findings[0].line, findings[0].column) == ("sample-private-key", 2, 1)
    assert findings[0].fingerprint == scanner.fingerprinter.fingerprint(PEM_BODY)


def test_stats_count_candidates_and_confirmations(ruleset: RuleSet, fingerprinter) -> None:
    scanner = Scanner(ruleset, fingerprinter, engine="python")
    scan(scanner, f"k={AWS}\npassword=aaaaaaaaaa\n")
    stats = scanner.stats.as_dict()["rules"]
    assert stats["sample-aws-access-key-id"] == {"candidates": 1, "confirmed": 1}
    assert stats["sample-password-assignment"] == {"candidates": 1, "confirmed": 0}


def test_hyperscan_database_is_cached_by_digest(ruleset: RuleSet, fingerprinter, tmp_path: Path) -> None:
    first = Scanner(ruleset, fingerprinter, engine="hyperscan", cache_dir=tmp_path)
    files = sorted(p.suffix for p in tmp_path.iterdir())
    assert files == [".db", ".json"]
    second = Scanner(ruleset, fingerprinter, engine="hyperscan", cache_dir=tmp_path)
    assert second.matcher.compiled == first.matcher.compiled
    assert [f.rule_id for f in scan(second, f"k={AWS}")] == ["sample-aws-access-key-id"]
    for path in tmp_path.iterdir():  # a corrupt cache is rebuilt, not fatal
        path.write_bytes(b"garbage")
    third = Scanner(ruleset, fingerprinter, engine="hyperscan", cache_dir=tmp_path)
    assert [f.rule_id for f in scan(third, f"k={AWS}")] == ["sample-aws-access-key-id"]


def test_rules_hyperscan_cannot_compile_fall_back_to_keywords(tmp_path: Path, fingerprinter) -> None:
    pack = tmp_path / "lookaround.toml"
    pack.write_text("""
[pack]
name = "lookaround"
[[rule]]
id = "recursive-token"
description = "needs recursion"
regex = \'\'\'\\btok_(?P<secret>[a-z0-9]{12})\\b(?:<(?R)>)?\'\'\'
keywords = ["tok_"]
severity = "low"
[[rule.example]]
secret = "tok_abcdef123456"
[[rule.counterexample]]
secret = "tok_short"
""")
    rules = load_ruleset([pack], include_default=False)
    scanner = Scanner(rules, fingerprinter, engine="hyperscan", cache_dir=tmp_path / "cache")
    assert scanner.matcher.fallback == [0]
    assert [f.rule_id for f in scan(scanner, "a = tok_abcdef123456;")] == ["recursive-token"]
    assert scan(scanner, "a = tok_abcdef12345;") == []


def test_scanner_is_usable_from_many_threads(hs_scanner: Scanner) -> None:
    text = ("noise line\n" * 200 + f"k={AWS}\n") * 20
    with ThreadPoolExecutor(4) as pool:
        counts = list(pool.map(lambda _: len(scan(hs_scanner, text)), range(16)))
    assert counts == [20] * 16


@pytest.mark.parametrize("value", ["%s", "%(password)s", "%-12s", "%1$s"])
def test_format_placeholders_are_not_passwords(scanner: Scanner, value: str) -> None:
    assert scan(scanner, f"password={value}") == []
    assert scan(scanner, f"password = '{value}'") == []
