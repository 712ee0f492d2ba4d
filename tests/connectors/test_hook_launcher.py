"""The console script runs the plain ``jitsec hook pre-commit [FILES]`` without the command-line
framework, and hands every other form (options, a broker in the environment) to the full CLI, with
the same outcome either way."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from jitsec.kernel.credential_format import mint

pytestmark = pytest.mark.slow

# Runs the console script's entry point in-process, then says whether click was ever imported.
PROBE = """
import sys
from jitsec.launcher import run
sys.argv = ["jitsec", *sys.argv[1:]]
try:
    run()
except SystemExit as stop:
    code = stop.code
print("click" in sys.modules, code)
"""


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    kept = {key: value for key, value in os.environ.items()
            if key not in {"CI", "JITSEC_BROKER_URL", "JITSEC_BROKER_KEY"}}
    return {
        **kept, "JITSEC_FINGERPRINT_KEY": "23" * 32, "HOME": str(tmp_path), "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org",
    }  # fmt: skip


def git(repo: Path, env: dict[str, str], *arguments: str) -> None:
    subprocess.run(["git", *arguments], cwd=repo, env=env, check=True, capture_output=True)


def staged_secret(tmp_path: Path, env: dict[str, str]) -> tuple[Path, str]:
    """A new repository with a broker token staged in settings.py, line 2; and the token."""
    repo, secret = tmp_path / "repo", mint("jit_")
    repo.mkdir()
    git(repo, env, "init", "-q", "-b", "main")
    (repo / "settings.py").write_text(f"DEBUG = True\nTOKEN = '{secret}'\n")
    git(repo, env, "add", ".")
    return repo, secret


def probe(repo: Path, env: dict[str, str], *arguments: str) -> tuple[bool, str, str]:
    """(click imported, exit status, stderr) of one run of the entry point."""
    result = subprocess.run([sys.executable, "-c", PROBE, *arguments], cwd=repo, env=env,
                            capture_output=True, text=True, check=False)
    imported, code = result.stdout.split()
    return imported == "True", code, result.stderr


def test_the_plain_hook_blocks_without_importing_click(tmp_path: Path, env: dict[str, str]) -> None:
    repo, secret = staged_secret(tmp_path, env)
    imported, code, stderr = probe(repo, env, "hook", "pre-commit")
    assert (imported, code) == (False, "1")
    assert "settings.py:2" in stderr and secret not in stderr


def test_an_option_goes_to_the_full_cli_with_the_same_outcome(tmp_path: Path, env: dict[str, str]) -> None:
    repo, _ = staged_secret(tmp_path, env)
    plain = probe(repo, env, "hook", "pre-commit")
    full = probe(repo, env, "hook", "pre-commit", "--state-dir", str(repo.parent / "state"))
    assert full[0] is True and full[1:] == plain[1:]


def test_a_broker_in_the_environment_gets_the_full_checks(tmp_path: Path, env: dict[str, str]) -> None:
    repo, _ = staged_secret(tmp_path, env)
    with_broker = {**env, "JITSEC_BROKER_URL": "http://127.0.0.1:9"}
    imported, code, stderr = probe(repo, with_broker, "hook", "pre-commit")
    assert (imported, code) == (True, "2")
    assert "JITSEC_BROKER_KEY" in stderr  # the scanner key is required, as the full CLI checks


def test_files_passed_by_the_framework_stay_on_the_plain_path(tmp_path: Path, env: dict[str, str]) -> None:
    repo, _ = staged_secret(tmp_path, env)
    (repo / "clean.txt").write_text("nothing\n")
    assert probe(repo, env, "hook", "pre-commit", "clean.txt")[:2] == (False, "0")
    assert probe(repo, env, "hook", "pre-commit", "clean.txt", "settings.py")[:2] == (False, "1")


def test_other_commands_do_not_pay_for_the_hook(tmp_path: Path, env: dict[str, str]) -> None:
    probe_hook = PROBE.replace('print("click" in sys.modules, code)',
                               'print("jitsec.commands.hook_scan" in sys.modules, code)')
    result = subprocess.run([sys.executable, "-c", probe_hook, "rules", "--help"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, check=False)
    assert result.stdout.split()[-2:] == ["False", "0"], result.stderr
