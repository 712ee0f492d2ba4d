"""``.gitleaksignore``: both of gitleaks' fingerprint forms, comments, and entries that are skipped."""

from __future__ import annotations

import string

from hypothesis import given
from hypothesis import strategies as st
from jitsec.scanner.gitleaksignore import parse_entry, parse_gitleaksignore

FILES = st.text(string.ascii_letters + string.digits + "/._- ", min_size=1, max_size=30).filter(
    lambda f: f.strip() == f and f.removeprefix("./"))
RULES = st.text(string.ascii_lowercase + string.digits + "-", min_size=1, max_size=20)
COMMITS = st.text("0123456789abcdef", min_size=40, max_size=40)


def test_both_forms_and_comments() -> None:
    ignore = parse_gitleaksignore(
        "# accepted after review\n\n"
        "src/config.py:aws-access-key-id:12\n"
        "3d050f51cec0a1b2c3d4e5f60718293a4b5c6d7e:.env:generic-password:3\n"
        "ee3d443:.env:generic-password:9\n")
    assert len(ignore) == 3 and ignore.problems == ()
    assert ignore.accepts("src/config.py", "aws-access-key-id", 12)
    assert ignore.accepts("src/config.py", "aws-access-key-id", 12, commit="f" * 40)  # any commit
    assert not ignore.accepts("src/config.py", "aws-access-key-id", 13)
    assert ignore.accepts(".env", "generic-password", 3, commit="3d050f51cec0a1b2c3d4e5f60718293a4b5c6d7e")
    assert not ignore.accepts(".env", "generic-password", 3, commit="4" * 40)
    assert not ignore.accepts(".env", "generic-password", 3)  # a commit entry needs that commit
    assert ignore.accepts(".env", "generic-password", 9, commit="EE3D443" + "0" * 33)  # 8.26+ short ids


def test_rules_translated_from_a_gitleaks_config_match_their_own_ids() -> None:
    ignore = parse_gitleaksignore("a.env:team-token:1\n")
    assert ignore.accepts("a.env", "gitleaks-team-token", 1)
    assert not ignore.accepts("a.env", "team-token-2", 1)


def test_windows_separators_and_dot_slash_are_normalised() -> None:
    ignore = parse_gitleaksignore("src\\keys\\a.pem:private-key:1\n./b.env:x:2\n")
    assert ignore.accepts("src/keys/a.pem", "private-key", 1) and ignore.accepts("b.env", "x", 2)


def test_malformed_entries_are_reported_and_skipped() -> None:
    ignore = parse_gitleaksignore("just-a-file\na:b:c\na:b:0\nxyz:a:b:1\nabc12:a:b:1\n:rule:1\nok:rule:1\n")
    assert len(ignore) == 1 and ignore.accepts("ok", "rule", 1)
    assert [p.split(":")[0] for p in ignore.problems] == [f"line {n}" for n in range(1, 7)]


@given(FILES, RULES, st.integers(1, 10**6), st.none() | COMMITS)
def test_a_written_fingerprint_reads_back(file: str, rule: str, line: int, commit: str | None) -> None:
    text = f"{commit}:{file}:{rule}:{line}" if commit else f"{file}:{rule}:{line}"
    entry = parse_entry(text)
    assert entry is not None
    assert (entry.file, entry.rule_id, entry.line, entry.commit) == (file, rule, line, commit)
    ignore = parse_gitleaksignore(text + "\n")
    assert ignore.accepts(file, rule, line, commit=commit or "a" * 40)
    assert not ignore.accepts(file, rule, line + 1, commit=commit or "a" * 40)


@given(st.text(max_size=60))
def test_any_text_parses_without_raising(text: str) -> None:
    ignore = parse_gitleaksignore(text)
    assert len(ignore) + len(ignore.problems) <= len(text.splitlines())
