"""``.jitsec.toml``: discovery from the scanned path up to the repository root, and a parser that
names the file and the key of every problem."""

from __future__ import annotations

import string
import tomllib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jitsec.scanner.project_config import (
    PROJECT_FILE,
    ProjectConfigError,
    find_project_config,
    load_project_config,
    parse_project_config,
)

from jitsec.kernel.records import Severity

WORDS = st.text(string.ascii_letters + string.digits + "-_", min_size=1, max_size=10)


def test_found_from_a_subfolder_up_to_the_repository_root(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "src" / "deep").mkdir(parents=True)
    (repo / PROJECT_FILE).write_text("")
    assert find_project_config(repo / "src" / "deep") == (repo / PROJECT_FILE).resolve()
    (repo / "src" / PROJECT_FILE).write_text("")  # the nearest one wins
    assert find_project_config(repo / "src" / "deep") == (repo / "src" / PROJECT_FILE).resolve()


def test_not_looked_for_above_the_repository_root(tmp_path: Path) -> None:
    (tmp_path / PROJECT_FILE).write_text("")
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    assert find_project_config(repo) is None
    assert find_project_config(tmp_path / "elsewhere.txt") == (tmp_path / PROJECT_FILE).resolve()


def test_a_full_file_loads(tmp_path: Path) -> None:
    path = tmp_path / PROJECT_FILE
    path.write_text('min_severity = "high"\n[rules]\ndisable = ["generic-password"]\npacks = ["ci/x.toml"]\n'
                    '[allowlist]\npaths = ["tests/**"]\nsecrets = ["^EXAMPLE"]\nlines = ["fake"]\n'
                    'stopwords = ["Dummy"]\n')
    config = load_project_config(path)
    assert config.min_severity is Severity.HIGH and config.disabled_rules == {"generic-password"}
    assert config.packs == (tmp_path / "ci" / "x.toml",) and config.paths.matches("tests/a.py")
    assert config.content.allows("EXAMPLEKEY", "", "") and config.content.allows("x", "a fake line", "")
    assert config.content.stopwords == ("dummy",)


@pytest.mark.parametrize(("text", "key"), [
    ("min_severity = 'urgent'", "min_severity"),
    ("minseverity = 'high'", "minseverity"),
    ("[rules]\ndisabled = ['x']", "rules.disabled"),
    ("[rules]\ndisable = 'x'", "rules.disable"),
    ("[allowlist]\npath = ['x']", "allowlist.path"),
    ("[allowlist]\nsecrets = ['(unclosed']", "allowlist.secrets[0]"),
    ("[allowlist]\npaths = ['a[b']", "allowlist.paths"),
    ("[allowlist]\nlines = [1]", "allowlist.lines"),
    ("allowlist = 3", "allowlist"),
])
def test_every_problem_names_the_file_and_the_key(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / PROJECT_FILE
    path.write_text(text + "\n")
    with pytest.raises(ProjectConfigError) as raised:
        load_project_config(path)
    assert str(raised.value).startswith(f"{path}: {key}: ")


def test_invalid_toml_is_an_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / PROJECT_FILE
    path.write_text("[allowlist\n")
    with pytest.raises(ProjectConfigError, match="not valid TOML"):
        load_project_config(path)


KEYS = st.sampled_from(["min_severity", "rules", "allowlist", "disable", "packs", "paths", "secrets", "lines",
                        "stopwords", "severity", "path"])
VALUES = st.sampled_from([1, "", "high", "(", "*", "a[b"]) | st.lists(st.sampled_from(["x", "(", "", "a*"]),
                                                                   max_size=2)


@given(st.dictionaries(KEYS, VALUES, max_size=4), st.sampled_from(["", "rules", "allowlist"]))
def test_any_document_loads_or_fails_with_a_named_key(table: dict, where: str) -> None:
    raw = {where: table} if where else table
    path = Path("/project") / PROJECT_FILE
    try:
        config = parse_project_config(raw, path)
    except ProjectConfigError as error:
        assert str(error).startswith(f"{path}: ")
        return
    assert config.path == path


@given(st.lists(WORDS, max_size=3), st.lists(WORDS, max_size=3), st.sampled_from([s.value for s in Severity]))
def test_valid_documents_keep_what_they_say(disable: list[str], stopwords: list[str], severity: str) -> None:
    text = (f"min_severity = {severity!r}\n[rules]\ndisable = {disable!r}\n"
            f"[allowlist]\nstopwords = {stopwords!r}\n")
    config = parse_project_config(tomllib.loads(text), Path("/p") / PROJECT_FILE)
    assert config.disabled_rules == frozenset(disable) and config.min_severity is Severity(severity)
    assert config.content.stopwords == tuple(word.lower() for word in stopwords)
