"""Allowlists that apply to every rule: globs, path rules, content allowlists in the engine, and the
inline markers; none of them hides a broker credential."""

from __future__ import annotations

import string

import pytest
import regex
from hypothesis import given
from hypothesis import strategies as st
from jitsec.scanner.allowlist import ContentAllowlist, Glob, GlobError, PathRules, glob_regex
from jitsec.scanner.engine import Scanner
from jitsec.scanner.ruleset import RuleSet

from jitsec.kernel.credential_format import CredentialKind, mint, sha256_fingerprint
from jitsec.kernel.records import Confidence, FileOrigin, GitOrigin, KafkaOrigin, StreamOrigin

AWS = "AKIA2OGYBAH6STMMNXNN"
NAMES = st.text(string.ascii_letters + string.digits + "-_.", min_size=1, max_size=12).filter(
    lambda name: name not in (".", ".."))


@pytest.mark.parametrize(("glob", "path", "expected"), [
    ("*.min.js", "lib/vendor/app.min.js", True),
    ("*.min.js", "lib/app.js", False),
    ("node_modules", "web/node_modules/react/index.js", True),
    ("node_modules", "web/node_modules_old/x.js", False),
    ("tests/fixtures/**", "tests/fixtures/keys/a.pem", True),
    ("tests/fixtures/**", "tests/fixtures", True),
    ("tests/fixtures/**", "src/tests/fixtures/a.pem", False),  # anchored at the base
    ("docs/*.md", "docs/a.md", True),
    ("docs/*.md", "docs/deep/a.md", False),  # * stays within one name
    ("**/secrets/*.env", "a/b/secrets/prod.env", True),
    ("**/secrets/*.env", "secrets/prod.env", True),
    ("/build/", "build/out.txt", True),
    ("./build", "src/build/out.txt", False),
    ("file[0-9].txt", "x/file7.txt", True),
    ("file[!0-9].txt", "x/file7.txt", False),
    ("file?.txt", "file10.txt", False),
])
def test_globs_match_names_anywhere_and_paths_from_the_base(glob: str, path: str, expected: bool) -> None:
    assert PathRules.of([glob]).matches(path) is expected


def test_bad_globs_are_errors() -> None:
    for bad in ("", "/", "file[0-9.txt"):
        with pytest.raises(GlobError):
            Glob.compile(bad)


@given(st.lists(NAMES, min_size=1, max_size=5))
def test_a_literal_path_glob_matches_that_path_and_everything_below_it(parts: list[str]) -> None:
    path = "/".join(parts)  # names without glob characters: the glob is the path itself
    rules = PathRules.of([path])
    assert rules.matches(path) and rules.matches(path + "/below/file.txt")
    assert not rules.matches(path + "x")


@given(NAMES, st.lists(NAMES, max_size=4))
def test_a_star_glob_never_crosses_a_folder(name: str, folders: list[str]) -> None:
    assert regex.fullmatch(glob_regex("*"), name)
    if folders:
        assert not regex.fullmatch(glob_regex("*"), "/".join([*folders, name]))


def test_path_regexes_are_searched_in_the_whole_path() -> None:
    rules = PathRules(regexes=(regex.compile(r"(^|/)vendor/"),))
    assert rules.matches("third_party/vendor/lib.go") and not rules.matches("src/vendors.go")


def test_content_allowlist_targets_secret_line_match_and_stopwords() -> None:
    allow = ContentAllowlist(secrets=(regex.compile("^AKIA2OG"),))
    assert allow.allows(AWS, f"key = {AWS}", AWS) and not allow.allows("AKIAXXX", "", "")
    assert ContentAllowlist(lines=(regex.compile("fixture"),)).allows(AWS, f"{AWS} # fixture", AWS)
    assert not ContentAllowlist(lines=(regex.compile("fixture"),)).allows(AWS, f"key = {AWS}", AWS)
    assert ContentAllowlist(matches=(regex.compile("^key="),)).allows(AWS, "", f"key={AWS}")
    assert ContentAllowlist(stopwords=("ybah",)).allows(AWS, "", AWS)
    assert not ContentAllowlist() and not ContentAllowlist().allows(AWS, AWS, AWS)


def _scanner(ruleset: RuleSet, fingerprinter, allowlist: ContentAllowlist | None = None,
             live: frozenset[str] = frozenset()) -> Scanner:
    return Scanner(ruleset, fingerprinter, engine="python", allowlist=allowlist,
                   live_fingerprints=live.__contains__ if live else None)


def _rules(scanner: Scanner, text: str, origin=None) -> list[str]:
    return [f.rule_id for f in scanner.scan_bytes(text.encode(), origin or FileOrigin("a.py"))]


def test_the_engine_applies_a_content_allowlist_in_every_origin(ruleset: RuleSet, fingerprinter) -> None:
    allow = ContentAllowlist(lines=(regex.compile("known-test-value"),))
    scanner = _scanner(ruleset, fingerprinter, allow)
    for origin in (FileOrigin("a.py"), StreamOrigin("-"), KafkaOrigin("logs", 0, 1)):
        assert _rules(scanner, f"key = '{AWS}'  # known-test-value\n", origin) == []
        assert _rules(scanner, f"key = '{AWS}'\n", origin) == ["sample-aws-access-key-id"]


def test_a_content_allowlist_never_hides_a_broker_credential(ruleset: RuleSet, fingerprinter) -> None:
    token = mint(CredentialKind.ENGINE_TOKEN)
    allow = ContentAllowlist(secrets=(regex.compile("."),), lines=(regex.compile("."),),
                             matches=(regex.compile("."),), stopwords=("jit",))
    scanner = _scanner(ruleset, fingerprinter, allow)
    assert _rules(scanner, f"token = {token}\n") == ["sample-broker-token"]


def test_a_content_allowlist_never_hides_a_live_credential_of_any_shape(ruleset: RuleSet,
                                                                        fingerprinter) -> None:
    scanner = _scanner(ruleset, fingerprinter, ContentAllowlist(secrets=(regex.compile("AKIA"),)),
                       live=frozenset({sha256_fingerprint(AWS)}))
    [finding] = scanner.scan_bytes(f"key = '{AWS}'\n".encode(), FileOrigin("a.py"))
    assert finding.confidence is Confidence.CONFIRMED


@pytest.mark.parametrize("marker", ["gitleaks:allow", "jitsec:allow", "pragma: allowlist secret"])
def test_inline_markers_silence_their_line_in_files_and_history(scanner: Scanner, marker: str) -> None:
    for origin in (FileOrigin("a.py"), GitOrigin("0" * 40, "a.py")):
        assert _rules(scanner, f"key = '{AWS}'  # {marker}\n", origin) == []
        assert _rules(scanner, f"# {marker}\nkey = '{AWS}'\n", origin) == ["sample-aws-access-key-id"]


@pytest.mark.parametrize("marker", ["gitleaks:allow", "jitsec:allow"])
def test_an_inline_marker_in_a_stream_excuses_nothing(scanner: Scanner, marker: str) -> None:
    for origin in (StreamOrigin("-"), KafkaOrigin("logs", 0, 7)):
        assert _rules(scanner, f"key = '{AWS}'  # {marker}\n", origin) == ["sample-aws-access-key-id"]


@pytest.mark.parametrize("marker", ["gitleaks:allow", "jitsec:allow"])
def test_an_inline_marker_never_hides_a_broker_credential(scanner: Scanner, marker: str) -> None:
    token = mint(CredentialKind.TASK_TOKEN)
    for origin in (FileOrigin("agent.log"), GitOrigin("0" * 40, "agent.log")):
        assert _rules(scanner, f"Authorization: Bearer {token}  # {marker}\n", origin) == [
            "sample-broker-token"]


def test_an_inline_marker_never_hides_a_live_credential(ruleset: RuleSet, fingerprinter) -> None:
    scanner = _scanner(ruleset, fingerprinter, live=frozenset({sha256_fingerprint(AWS)}))
    [finding] = scanner.scan_bytes(f"key = '{AWS}'  # gitleaks:allow\n".encode(), FileOrigin("a.py"))
    assert finding.confidence is Confidence.CONFIRMED
