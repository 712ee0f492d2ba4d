"""`jitsec ci` on real repositories, with the environments GitHub Actions and GitLab CI give a job."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jitsec.connectors.sources.ci_range import CiBase, ci_base

from tests.connectors.git_env import SECRET_LINE, clean_env
from tests.connectors.test_hook_command import git, init, run

pytestmark = pytest.mark.slow



@pytest.fixture
def env(tmp_path: Path, shared_cache: Path) -> dict[str, str]:
    return clean_env(tmp_path, XDG_CACHE_HOME=str(shared_cache / "xdg"))


@pytest.fixture
def repo(tmp_path: Path, env: dict[str, str]) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    init(path, env)
    return path


def commit(repo: Path, env: dict[str, str], name: str, text: str) -> str:
    (repo / name).parent.mkdir(parents=True, exist_ok=True)
    (repo / name).write_text(text)
    git(repo, env, "add", name)
    git(repo, env, "commit", "-q", "-m", f"add {name}")
    return git(repo, env, "rev-parse", "HEAD")


def test_the_whole_tree_fails_on_a_committed_secret_and_writes_sarif(repo: Path, env, tmp_path: Path) -> None:
    clean = run(["jitsec", "ci"], repo, env)
    assert clean.returncode == 0, clean.stderr
    commit(repo, env, "src/settings.py", "import os\n" + SECRET_LINE)
    (repo / "untracked.py").write_text(SECRET_LINE)  # not the repository's: not scanned
    sarif = tmp_path / "out" / "jitsec.sarif"
    sarif.parent.mkdir()
    result = run(["jitsec", "ci", "--sarif", str(sarif)], repo / "src", env)  # from a subfolder
    assert result.returncode == 1, result.stderr
    assert "src/settings.py:2" in result.stdout and "untracked" not in result.stdout
    assert "scanned the whole tree" in result.stderr
    (found,) = json.loads(sarif.read_text())["runs"][0]["results"]
    assert found["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "src/settings.py"
    assert "Tr0ub4dor&3" not in sarif.read_text()


def test_a_root_baseline_accepts_and_the_exit_code_turns_clean(repo: Path, env) -> None:
    commit(repo, env, "settings.py", SECRET_LINE)
    assert run(["jitsec", "baseline", "create", "."], repo, env).returncode == 0
    git(repo, env, "add", ".jitsec.baseline")
    git(repo, env, "commit", "-q", "-m", "accept")
    result = run(["jitsec", "ci"], repo, env)
    assert result.returncode == 0 and "1 in baseline" in result.stderr, result.stderr


def test_since_scans_only_the_lines_the_new_commits_add(repo: Path, env) -> None:
    commit(repo, env, "old.py", SECRET_LINE)
    base = commit(repo, env, "notes.txt", "nothing\n")
    assert run(["jitsec", "ci", "--since", base], repo, env).returncode == 0  # the old one is not theirs
    commit(repo, env, "new.py", "x = 1\n" + SECRET_LINE)
    result = run(["jitsec", "ci", "--since", base, "-f", "json"], repo, env)
    assert result.returncode == 1
    paths = [finding["path"] for finding in json.loads(result.stdout)["findings"]]
    assert len(paths) == 1 and paths[0].endswith(":new.py")


def test_since_auto_reads_github_and_gitlab_and_falls_back_to_the_tree(repo: Path, env, tmp_path) -> None:
    commit(repo, env, "old.py", SECRET_LINE)
    base = commit(repo, env, "notes.txt", "nothing\n")
    commit(repo, env, "clean.py", "x = 1\n")
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"before": base, "after": "x"}))
    github = {**env, "GITHUB_ACTIONS": "true", "GITHUB_EVENT_PATH": str(event)}
    pushed = run(["jitsec", "ci", "--since", "auto"], repo, github)
    assert pushed.returncode == 0 and "push event" in pushed.stderr, pushed.stderr
    gitlab = {**env, "GITLAB_CI": "true", "CI_MERGE_REQUEST_DIFF_BASE_SHA": base}
    assert run(["jitsec", "ci", "--since", "auto"], repo, gitlab).returncode == 0
    alone = run(["jitsec", "ci", "--since", "auto"], repo, env)
    assert alone.returncode == 1 and "whole tree" in alone.stderr


def test_a_base_missing_from_a_shallow_clone_or_no_repository_exits_2(repo: Path, env, tmp_path) -> None:
    base = commit(repo, env, "a.txt", "a\n")
    commit(repo, env, "b.txt", "b\n")
    shallow = tmp_path / "shallow"
    git(tmp_path, env, "clone", "-q", "--depth", "1", f"file://{repo}", str(shallow))
    result = run(["jitsec", "ci", "--since", base], shallow, env)
    assert result.returncode == 2 and "fetch-depth: 0" in result.stderr
    nowhere = tmp_path / "plain"
    nowhere.mkdir()
    assert run(["jitsec", "ci"], nowhere, env).returncode == 2


def test_ci_base_from_each_environment(tmp_path: Path) -> None:
    pull = tmp_path / "pull.json"
    pull.write_text(json.dumps({"pull_request": {"base": {"sha": "abc"}}, "before": "def"}))
    assert ci_base({"GITHUB_ACTIONS": "true", "GITHUB_EVENT_PATH": str(pull)}) == CiBase(
        "abc", "the pull_request event (base.sha)")
    new_branch = tmp_path / "push.json"
    new_branch.write_text(json.dumps({"before": "0" * 40}))
    assert ci_base({"GITHUB_ACTIONS": "true", "GITHUB_EVENT_PATH": str(new_branch)}) is None
    broken = tmp_path / "broken.json"
    broken.write_text("[")
    assert ci_base({"GITHUB_ACTIONS": "true", "GITHUB_EVENT_PATH": str(broken)}) is None
    assert ci_base({"GITLAB_CI": "true", "CI_COMMIT_BEFORE_SHA": "0" * 40}) is None
    pushed = ci_base({"GITLAB_CI": "true", "CI_COMMIT_BEFORE_SHA": "fed"})
    assert pushed == CiBase("fed", "$CI_COMMIT_BEFORE_SHA")
    assert ci_base({}) is None
