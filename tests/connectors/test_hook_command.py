"""`jitsec hook pre-commit|pre-push` in real repositories, run the way git runs them."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from jitsec.kernel.credential_format import mint

pytestmark = pytest.mark.slow


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    return path


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        **{key: value for key, value in os.environ.items() if key != "CI"},  # a developer's machine
        "JITSEC_FINGERPRINT_KEY": "22" * 32,
        "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org",
        "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(tmp_path),
    }  # fmt: skip


def run(command: list[str], cwd: Path, env: dict[str, str], stdin: str | None = None):
    return subprocess.run(command, cwd=cwd, env=env, input=stdin, capture_output=True, text=True, check=False)


def git(repo: Path, env: dict[str, str], *arguments: str) -> str:
    result = run(["git", *arguments], repo, env)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def init(repo: Path, env: dict[str, str]) -> None:
    git(repo, env, "init", "-q", "-b", "main")
    (repo / "README").write_text("hello\n")
    git(repo, env, "add", ".")
    git(repo, env, "commit", "-q", "-m", "base")


def test_pre_commit_blocks_a_staged_secret_naming_file_line_and_rule(repo: Path, env) -> None:
    init(repo, env)
    secret = mint("jit_")
    (repo / "settings.py").write_text(f"DEBUG = True\nTOKEN = '{secret}'\n")
    (repo / "notes.txt").write_text("nothing here\n")
    git(repo, env, "add", ".")
    result = run(["jitsec", "hook", "pre-commit"], repo, env)
    assert result.returncode == 1
    assert "settings.py:2:" in result.stderr and "broker-engine-token" in result.stderr
    assert secret not in result.stderr + result.stdout
    assert "git commit --no-verify" in result.stderr
    in_ci = run(["jitsec", "hook", "pre-commit"], repo, {**env, "CI": "true"})
    assert in_ci.returncode == 1 and "--no-verify" not in in_ci.stderr and "in CI" in in_ci.stderr


def test_pre_commit_scans_only_what_is_staged(repo: Path, env) -> None:
    init(repo, env)
    (repo / "old.env").write_text(f"TOKEN={mint('jit_')}\n")
    git(repo, env, "add", ".")
    git(repo, env, "commit", "-q", "--no-verify", "-m", "an old leak, not this commit's business")
    (repo / "old.env").write_text((repo / "old.env").read_text() + "DEBUG=1\n")
    (repo / "unstaged.env").write_text(f"TOKEN={mint('jit_')}\n")
    git(repo, env, "add", "old.env")
    assert run(["jitsec", "hook", "pre-commit"], repo, env).returncode == 0


def test_installed_hook_stops_git_commit_and_baseline_lets_it_through(repo: Path, env) -> None:
    init(repo, env)
    hook = repo / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\nexec jitsec hook pre-commit\n")
    hook.chmod(0o755)
    secret = mint("jit_")
    (repo / "config.yml").write_text(f"token: {secret}\n")
    git(repo, env, "add", ".")
    blocked = run(["git", "commit", "-q", "-m", "leak"], repo, env)
    assert blocked.returncode != 0 and "config.yml:1:" in blocked.stderr
    assert git(repo, env, "rev-list", "--count", "HEAD") == "1"
    # A detect-secrets baseline accepting a third-party secret (by its SHA-1) lets its commit pass;
    # one accepting the broker credential changes nothing: the broker always hears of those.
    third_party = "AKIA2OGYBAH6STMMNXNN"
    entries = [{"type": "x", "hashed_secret": hashlib.sha1(value.encode(), usedforsecurity=False).hexdigest()}
               for value in (secret, third_party)]
    baseline = {"version": "1.5.0", "results": {"config.yml": entries}}
    (repo / ".secrets.baseline").write_text(json.dumps(baseline))
    git(repo, env, "add", ".secrets.baseline")
    still_blocked = run(["git", "commit", "-q", "-m", "broker credential"], repo, env)
    assert still_blocked.returncode != 0 and "config.yml:1:" in still_blocked.stderr
    (repo / "config.yml").write_text(f"aws_access_key_id: {third_party}\n")
    git(repo, env, "add", ".")
    allowed = run(["git", "commit", "-q", "-m", "accepted"], repo, env)
    assert allowed.returncode == 0, allowed.stderr


def test_pre_push_scans_the_pushed_commits_only(tmp_path: Path, repo: Path, env) -> None:
    remote = tmp_path / "remote.git"
    git(tmp_path, env, "init", "-q", "--bare", str(remote))
    init(repo, env)
    git(repo, env, "remote", "add", "origin", str(remote))
    hook = repo / ".git" / "hooks" / "pre-push"
    hook.write_text('#!/bin/sh\nexec jitsec hook pre-push "$@"\n')
    hook.chmod(0o755)
    assert run(["git", "push", "-q", "origin", "main"], repo, env).returncode == 0
    (repo / "deploy.sh").write_text(f"export TOKEN={mint('jit_')}\n")
    git(repo, env, "add", ".")
    git(repo, env, "commit", "-q", "--no-verify", "-m", "leak")
    leak_commit = git(repo, env, "rev-parse", "HEAD")
    (repo / "more.txt").write_text("clean\n")
    git(repo, env, "add", ".")
    git(repo, env, "commit", "-q", "-m", "clean")
    blocked = run(["git", "push", "-q", "origin", "main"], repo, env)
    assert blocked.returncode != 0
    assert f"{leak_commit[:12]}:deploy.sh:1:" in blocked.stderr
    assert git(repo, env, "ls-remote", str(remote), "main").split()[0] != git(repo, env, "rev-parse", "HEAD")


def test_pre_push_with_pre_commit_framework_environment(repo: Path, env) -> None:
    init(repo, env)
    base = git(repo, env, "rev-parse", "HEAD")
    (repo / "a.txt").write_text(f"{mint('jit_')}\n")
    git(repo, env, "add", ".")
    git(repo, env, "commit", "-q", "-m", "leak")
    framework_env = {**env, "PRE_COMMIT_FROM_REF": base, "PRE_COMMIT_TO_REF": "HEAD"}
    result = run(["jitsec", "hook", "pre-push"], repo, framework_env, stdin="")
    assert result.returncode == 1 and "a.txt:1:" in result.stderr


def test_outside_a_repository_is_exit_2(tmp_path: Path, env) -> None:
    result = run(["jitsec", "hook", "pre-commit"], tmp_path, env)
    assert result.returncode == 2 and "not inside a git work tree" in result.stderr


def test_jitsec_baseline_at_the_root_is_honoured(repo: Path, env) -> None:
    init(repo, env)
    (repo / "fixture.py").write_text("AWS_ACCESS_KEY_ID = 'AKIA2OGYBAH6STMMNXNN'\n")
    created = run(["jitsec", "baseline", "create", "fixture.py"], repo, env)
    assert created.returncode == 0, created.stderr
    assert (repo / ".jitsec.baseline").is_file()
    git(repo, env, "add", ".")
    result = run(["jitsec", "hook", "pre-commit"], repo, env)
    assert result.returncode == 0, result.stderr


def test_pre_commit_honours_the_project_file_and_markers_but_never_for_a_broker_credential(
        repo: Path, env) -> None:
    init(repo, env)
    aws = "AKIA2OGYBAH6STMMNXNN"
    (repo / ".jitsec.toml").write_text('[allowlist]\npaths = ["tests/fixtures/**"]\n')
    (repo / "tests" / "fixtures").mkdir(parents=True)
    (repo / "tests" / "fixtures" / "keys.py").write_text(f"AWS = '{aws}'\n")
    (repo / "app.py").write_text(f"AWS = '{aws}'  # gitleaks:allow\n")
    git(repo, env, "add", ".")
    assert run(["jitsec", "hook", "pre-commit"], repo, env).returncode == 0
    (repo / "tests" / "fixtures" / "agent.log").write_text(f"token={mint('jit_')}  # jitsec:allow\n")
    (repo / "other.py").write_text(f"AWS = '{aws}'\n")
    git(repo, env, "add", ".")
    result = run(["jitsec", "hook", "pre-commit"], repo, env)
    assert result.returncode == 1
    assert "agent.log:1:" in result.stderr and "other.py:1:" in result.stderr
    assert "keys.py" not in result.stderr and "app.py" not in result.stderr


def test_pre_commit_with_a_bad_project_file_cannot_scan(repo: Path, env) -> None:
    init(repo, env)
    (repo / ".jitsec.toml").write_text("[allowlist]\nsecret = ['x']\n")
    (repo / "a.py").write_text("x = 1\n")
    git(repo, env, "add", ".")
    result = run(["jitsec", "hook", "pre-commit"], repo, env)
    assert result.returncode == 2 and "allowlist.secret: unknown key" in result.stderr
