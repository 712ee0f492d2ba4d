"""The real pre-commit framework running jitsec's hooks, as a developer, pre-commit.ci or a CI job
runs them, in throwaway repositories.

The hooks are this repository's own `.pre-commit-hooks.yaml` entries, used as `repo: local` hooks
with `language: system` (the jitsec under test, from PATH) so nothing is downloaded: every other
field (entry, pass_filenames, stages, require_serial...) is the manifest's.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.connectors.git_env import SECRET_LINE, clean_env
from tests.connectors.test_hook_command import git, init, run

pytestmark = pytest.mark.slow

MANIFEST = Path(__file__).parents[2] / ".pre-commit-hooks.yaml"


@pytest.fixture
def env(tmp_path: Path, shared_cache: Path) -> dict[str, str]:
    assert shutil.which("pre-commit"), "pre-commit (the test extra) is not installed"
    return clean_env(tmp_path, PRE_COMMIT_HOME=str(shared_cache / "pre-commit"),
                     XDG_CACHE_HOME=str(shared_cache / "xdg"), JITSEC_FINGERPRINT_KEY="33" * 32)


@pytest.fixture
def repo(tmp_path: Path, env: dict[str, str]) -> Path:
    """A repository whose .pre-commit-config.yaml runs both manifest hooks, committed with it."""
    path = tmp_path / "repo"
    path.mkdir()
    init(path, env)
    hooks = [{**hook, "language": "system"} for hook in yaml.safe_load(MANIFEST.read_text())]
    config = {"repos": [{"repo": "local", "hooks": hooks}]}
    (path / ".pre-commit-config.yaml").write_text(json.dumps(config, indent=2))  # JSON is YAML
    git(path, env, "add", ".")
    git(path, env, "commit", "-q", "-m", "pre-commit config")
    return path


def pre_commit(repo: Path, env: dict[str, str], *arguments: str) -> subprocess.CompletedProcess[str]:
    return run(["pre-commit", *arguments], repo, env)


def test_the_manifest_is_valid_for_pre_commit(env: dict[str, str], tmp_path: Path) -> None:
    result = run(["pre-commit", "validate-manifest", str(MANIFEST)], tmp_path, env)
    assert result.returncode == 0, result.stdout + result.stderr
    ids = {hook["id"]: hook for hook in yaml.safe_load(MANIFEST.read_text())}
    assert ids["jitsec"]["pass_filenames"] is True and ids["jitsec-pre-push"]["stages"] == ["pre-push"]


def test_all_files_fails_on_a_committed_secret_and_passes_a_clean_tree(repo: Path, env) -> None:
    clean = pre_commit(repo, env, "run", "--all-files")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    (repo / "settings.py").write_text(SECRET_LINE)
    git(repo, env, "add", "settings.py")
    git(repo, env, "commit", "-q", "--no-verify", "-m", "a secret slips in")
    dirty = pre_commit(repo, env, "run", "--all-files")
    assert dirty.returncode == 1
    assert "settings.py:1" in dirty.stdout and "Tr0ub4dor&3" not in dirty.stdout
    assert pre_commit(repo, env, "run", "jitsec", "--files", "README").returncode == 0  # another file


def test_a_staged_secret_fails_pre_commit_run_and_blocks_git_commit(repo: Path, env: dict[str, str]) -> None:
    (repo / "app.py").write_text("import os\n" + SECRET_LINE)
    git(repo, env, "add", "app.py")
    result = pre_commit(repo, env, "run")
    assert result.returncode == 1 and "app.py:2" in result.stdout
    assert pre_commit(repo, env, "install").returncode == 0
    commit = run(["git", "commit", "-q", "-m", "leak"], repo, env)
    assert commit.returncode != 0 and "app.py:2" in commit.stdout + commit.stderr
    (repo / "app.py").write_text("import os\n")
    git(repo, env, "add", "app.py")
    assert run(["git", "commit", "-q", "-m", "clean"], repo, env).returncode == 0


def test_the_pre_push_hook_blocks_a_push_that_adds_a_secret(repo: Path, env, tmp_path: Path) -> None:
    remote = tmp_path / "remote.git"
    git(tmp_path, env, "init", "-q", "--bare", str(remote))
    git(repo, env, "remote", "add", "origin", str(remote))
    git(repo, env, "push", "-q", "origin", "main")
    assert pre_commit(repo, env, "install", "--hook-type", "pre-push").returncode == 0
    base = git(repo, env, "rev-parse", "HEAD")
    (repo / "deploy.py").write_text(SECRET_LINE)
    git(repo, env, "add", "deploy.py")
    git(repo, env, "commit", "-q", "--no-verify", "-m", "leak")
    push = run(["git", "push", "origin", "main"], repo, env)
    assert push.returncode != 0 and "deploy.py" in push.stdout + push.stderr
    assert git(remote, env, "rev-parse", "main") == base  # nothing reached the remote
    staged = pre_commit(repo, env, "run", "--hook-stage", "pre-push", "--from-ref", base, "--to-ref", "HEAD")
    assert staged.returncode == 1 and "deploy.py" in staged.stdout


def test_a_baseline_committed_from_another_machine_lets_all_files_pass(repo: Path, env, tmp_path) -> None:
    (repo / "settings.py").write_text(SECRET_LINE)
    git(repo, env, "add", "settings.py")
    git(repo, env, "commit", "-q", "--no-verify", "-m", "an accepted test password")
    laptop = {key: value for key, value in env.items() if key != "JITSEC_FINGERPRINT_KEY"}
    laptop["JITSEC_HOME"] = str(tmp_path / "laptop")  # its own local key: nothing shared with CI
    compiled = Path(env["XDG_CACHE_HOME"]) / "jitsec"  # the compiled rules, not to compile them twice
    compiled.mkdir(parents=True, exist_ok=True)
    (tmp_path / "laptop").mkdir()
    (tmp_path / "laptop" / "cache").symlink_to(compiled, target_is_directory=True)
    assert run(["jitsec", "baseline", "create", "."], repo, laptop).returncode == 0
    git(repo, env, "add", ".jitsec.baseline")
    git(repo, env, "commit", "-q", "--no-verify", "-m", "baseline")
    result = pre_commit(repo, env, "run", "--all-files")
    assert result.returncode == 0, result.stdout + result.stderr
    (repo / "settings.py").write_text(SECRET_LINE.replace("Tr0ub4dor", "Tr0ub4dour"))
    git(repo, env, "add", "settings.py")
    assert pre_commit(repo, env, "run", "--all-files").returncode == 1  # another password: not accepted
