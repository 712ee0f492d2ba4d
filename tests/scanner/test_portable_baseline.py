"""Portable baselines and SARIF fingerprints: the same findings accepted and named on every machine,
and nothing in a baseline or a report that lets a reader test password guesses cheaply."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jitsec.scanner.baseline import (
    BaselineError,
    CreatingHasher,
    HashCache,
    MatchingHasher,
    baseline_document,
    parse_baseline,
)
from jitsec.scanner.engine import Scanner
from jitsec.scanner.fingerprint import (
    Fingerprinter,
    SecretKdf,
    context_digest,
    partial_fingerprints,
    portable_path,
)
from jitsec.scanner.ruleset import RuleSet

from jitsec.kernel.records import FileOrigin, GitOrigin, StreamOrigin

AWS = "AKIA2OGYBAH6STMMNXNN"
FAST_KDF = {"n": 1 << 10, "r": 1, "p": 1}  # the lowest cost a baseline may ask for: quick tests


def _scanner(ruleset: RuleSet, key: bytes, hasher: Any = None) -> Scanner:
    return Scanner(ruleset, Fingerprinter(key), engine="python", secret_hasher=hasher)


def test_a_salted_baseline_made_under_one_key_accepts_the_same_finding_under_another(
    ruleset: RuleSet, tmp_path: Path
) -> None:
    origin = FileOrigin(str(tmp_path / "app" / "x.env"))
    data = f"a={AWS}\n".encode()
    creating = CreatingHasher(SecretKdf(b"s" * 16, **FAST_KDF), tmp_path)
    made = _scanner(ruleset, b"machine-a-key-16", creating).scan_bytes(data, origin)
    document = baseline_document(made, ruleset.digest, base=tmp_path, kdf=creating.kdf)
    (entry,) = document["findings"]
    assert entry["path"] == "app/x.env" and entry["secret_hash"].startswith("scrypt:")
    baseline = parse_baseline(json.loads(json.dumps(document)), base=tmp_path)
    other = _scanner(ruleset, b"machine-b-key-16", MatchingHasher(baseline.hashed))
    (seen,) = other.scan_bytes(data, origin)
    assert seen.fingerprint != made[0].fingerprint  # another machine's local key
    assert baseline.accepts(seen)
    (changed,) = other.scan_bytes(b"a=AKIAZZZZZZZZZZZZZZZ2\n", origin)  # another secret, same line
    assert changed.context == seen.context and not baseline.accepts(changed)
    (moved,) = other.scan_bytes(data, FileOrigin(str(tmp_path / "elsewhere.env")))
    assert not baseline.accepts(moved)  # accepted where it was accepted, not in every file


def test_a_baseline_holds_no_plaintext_nor_a_fast_unsalted_hash_of_the_secret(
    ruleset: RuleSet, tmp_path: Path
) -> None:
    creating = CreatingHasher(SecretKdf.fresh(), tmp_path)
    made = _scanner(ruleset, b"machine-a-key-16", creating).scan_bytes(
        f"a={AWS}\n".encode(), FileOrigin(str(tmp_path / "x.env")))
    text = json.dumps(baseline_document(made, ruleset.digest, base=tmp_path, kdf=creating.kdf))
    secret = AWS.encode()
    forbidden = [AWS, base64.b64encode(secret).decode()]
    for name in ("md5", "sha1", "sha224", "sha256", "sha384", "sha512", "blake2b", "sha3_256"):
        digest = hashlib.new(name, secret)
        forbidden += [digest.hexdigest(), base64.b64encode(digest.digest()).decode()]
    assert not [value for value in forbidden if value.lower() in text.lower()]


def test_under_a_shared_key_entries_are_keyed_fingerprints_and_a_stranger_key_is_named(
    ruleset: RuleSet, tmp_path: Path
) -> None:
    team = Fingerprinter(b"team-key-" * 4, shared=True)
    made = Scanner(ruleset, team, engine="python").scan_bytes(f"a={AWS}\n".encode(), FileOrigin("x.env"))
    document = baseline_document(made, ruleset.digest, base=tmp_path, key_id=team.key_id)
    assert document["key_id"] == team.key_id and "secret_hash" not in document
    baseline = parse_baseline(document)
    assert baseline.accepts(made[0]) and baseline.key_warnings(team.key_id) == []
    stranger = Fingerprinter(b"other-key" * 4, shared=True)
    assert "JITSEC_FINGERPRINT_KEY" in baseline.key_warnings(stranger.key_id)[0]
    assert baseline.key_warnings(None)  # a local key cannot match them either


def test_version_1_and_detect_secrets_baselines_still_read() -> None:
    old = parse_baseline({"format": "jitsec-baseline", "version": 1,
                          "findings": [{"fingerprint": "hmac-sha256:ab", "rule": "r"}]})
    assert old.fingerprints == frozenset({"hmac-sha256:ab"}) and not old.hashed
    detect = parse_baseline({"version": "1.5.0", "results": {"a": [{"hashed_secret": "AB12"}]}})
    assert detect.sha1 == frozenset({"ab12"})


@pytest.mark.parametrize("described", [
    {"scheme": "scrypt", "salt": "00" * 16, "n": 1 << 30, "r": 8, "p": 1},  # would allocate 1 TiB
    {"scheme": "scrypt", "salt": "00" * 16, "n": 1000, "r": 8, "p": 1},  # not a power of two
    {"scheme": "scrypt", "salt": "00" * 4, "n": 1024, "r": 8, "p": 1},  # short salt
    {"scheme": "scrypt", "salt": "zz" * 16, "n": 1024, "r": 8, "p": 1},
    {"scheme": "scrypt", "salt": "00" * 16, "n": True, "r": 8, "p": 1},
    {"scheme": "md5"},
])  # fmt: skip
def test_hostile_or_malformed_hash_parameters_are_refused(described: dict[str, Any]) -> None:
    document = {"format": "jitsec-baseline", "version": 2, "secret_hash": described, "findings": []}
    with pytest.raises(BaselineError, match="secret_hash"):
        parse_baseline(document, "b.json")


def test_a_newer_version_is_a_clear_error() -> None:
    with pytest.raises(BaselineError, match="version 3"):
        parse_baseline({"format": "jitsec-baseline", "version": 3, "findings": []})


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
_keys = st.sampled_from(["format", "version", "findings", "secret_hash", "key_id", "results", "rule",
                         "path", "fingerprint", "hashed_secret", "scheme", "salt", "n", "r", "p"])
_near = st.recursive(
    st.none() | st.integers(-2, 1 << 18) | st.text(max_size=40) | st.just("jitsec-baseline")
    | st.just("scrypt") | st.just("00" * 16),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=6),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(_json, _near))
def test_any_json_parses_or_is_refused_with_a_baseline_error(document: Any) -> None:
    try:
        baseline = parse_baseline(document)
    except BaselineError:
        return
    assert isinstance(baseline.fingerprints, frozenset)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["rule-a", "rule-b"]), st.text(min_size=1, max_size=12),
                          st.text(min_size=1, max_size=30)), max_size=6))
def test_written_entries_parse_back_to_exactly_what_they_accept(
    entries: list[tuple[str, str, str]],
) -> None:
    kdf = SecretKdf(b"k" * 16, **FAST_KDF)
    findings = [{"rule": rule, "path": path, "line": 1, "preview": "…", "severity": "high",
                 "secret_hash": kdf.digest(rule, path, secret)} for rule, path, secret in entries]
    baseline = parse_baseline({"format": "jitsec-baseline", "version": 2, "secret_hash": kdf.describe(),
                               "findings": findings})
    hasher = MatchingHasher(baseline.hashed)
    for rule, path, secret in entries:
        assert hasher.digest(rule, GitOrigin("c", path), secret) is not None
        assert hasher.digest(rule, GitOrigin("c", path), secret + "x") is None or any(
            (rule, path, secret + "x") == entry for entry in entries)


def test_context_masks_every_secret_and_ignores_spacing() -> None:
    line = b'  x = "hunter2"  y = "letmein" '
    first, second = line.index(b"hunter2"), line.index(b"letmein")
    both = [(first, first + 7), (second, second + 7)]
    other = b'x =    "AAAA" y = "B"'
    spans = [(other.index(b"AAAA"), other.index(b"AAAA") + 4), (other.index(b"B"), other.index(b"B") + 1)]
    assert context_digest(line, both) == context_digest(other, spans)
    assert context_digest(line, both[:1]) != context_digest(line.replace(b"letmein", b"other"), both[:1])


def test_sarif_fingerprints_name_rule_path_and_line_but_no_secret(
    ruleset: RuleSet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    data = f"a={AWS}\nb=1\na={AWS}\n".encode()
    one = _scanner(ruleset, b"machine-a-key-16").scan_bytes(data, FileOrigin("x.env"))
    two = _scanner(ruleset, b"machine-b-key-16").scan_bytes(data, FileOrigin(str(tmp_path / "x.env")))
    prints = partial_fingerprints(one)
    assert prints == partial_fingerprints(two)  # other key, absolute path: the same names
    assert [p["jitsecContext/v1"][-2:] for p in prints] == [":1", ":2"]  # twin lines stay two
    moved = _scanner(ruleset, b"machine-a-key-16").scan_bytes(b"\n\n" + data, FileOrigin("x.env"))
    assert partial_fingerprints(moved) == prints  # lines added above change nothing


def test_portable_paths() -> None:
    base = Path("/srv/repo")
    assert portable_path(FileOrigin("/srv/repo/a/b.env"), base) == "a/b.env"
    assert portable_path(FileOrigin("/elsewhere/b.env"), base) == "/elsewhere/b.env"
    assert portable_path(GitOrigin("abc", "a/b.env"), base) == "a/b.env"
    assert portable_path(StreamOrigin(), base) is None


def test_slow_hashes_are_kept_on_disk_under_the_local_key_and_read_back(tmp_path: Path) -> None:
    kdf = SecretKdf(b"c" * 16, **FAST_KDF)
    local = Fingerprinter(b"machine-a-key-16")
    file = tmp_path / "cache" / "baseline-hashes"
    first = HashCache(local.fingerprint, file).digest(kdf, "rule", "a.env", AWS)
    assert first == kdf.digest("rule", "a.env", AWS)
    text = file.read_text()
    assert AWS not in text and local.fingerprint(AWS) in text and oct(file.stat().st_mode)[-3:] == "600"
    file.write_text("not json\n" + text.replace(first, "scrypt:cafe"))  # a line to skip, a planted value
    assert HashCache(local.fingerprint, file).digest(kdf, "rule", "a.env", AWS) == "scrypt:cafe"  # read back
    other = Fingerprinter(b"machine-b-key-16")  # another key: another entry, computed afresh
    assert HashCache(other.fingerprint, file).digest(kdf, "rule", "a.env", AWS) == first
    file.write_bytes(b"x" * (HashCache.MAX_FILE_BYTES + 1))
    assert HashCache(local.fingerprint, file).digest(kdf, "rule", "a.env", AWS) == first
    assert file.stat().st_size < HashCache.MAX_FILE_BYTES  # started over
