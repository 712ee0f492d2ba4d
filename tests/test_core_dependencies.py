"""Scanning needs only the core dependencies; everything else is an extra, and a command that needs a
missing extra says which one to install.

A pre-commit hook's environment installs ``jitsec`` without extras. These tests run the real CLI in a
subprocess where every optional module fails to import, as it would in such an environment.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from jitsec.cli import EXTRA_OF_MODULE

ROOT = Path(__file__).resolve().parents[1]
AWS_KEY = "AKIA2OGYBAH6STMMNXNN"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEZ"[:-3] + "q7Z"

# Runs the CLI with the optional modules made unimportable (a meta path finder that refuses them).
BLOCKED_CLI = f"""
import sys
BLOCKED = {sorted(EXTRA_OF_MODULE)!r}

class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, Refuse())
from jitsec.cli import run
sys.argv[0] = "jitsec"
run()
"""


def jitsec_without_extras(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "JITSEC_HOME": str(cwd / ".home"), "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-c", BLOCKED_CLI, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, check=False, timeout=120)


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args], cwd=repo,
                   check=True, capture_output=True)


def test_the_core_dependencies_leave_out_the_broker_databases_and_streams() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    core = " ".join(project["dependencies"]).lower()
    for heavy in ("fastapi", "uvicorn", "pydantic", "psycopg", "kafka", "elasticsearch", "confluent"):
        assert heavy not in core
    extras = project["optional-dependencies"]
    for module, extra in EXTRA_OF_MODULE.items():
        assert extra in extras, f"{module} maps to an extra that does not exist: {extra}"


def test_scan_finds_a_secret_without_any_extra(tmp_path: Path) -> None:
    (tmp_path / "config.env").write_text(f"AWS_ACCESS_KEY_ID={AWS_KEY}\nAWS_SECRET_ACCESS_KEY={AWS_SECRET}\n")
    result = jitsec_without_extras("scan", "-f", "jsonl", "config.env", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "aws" in result.stdout and AWS_SECRET not in result.stdout


def test_the_pre_commit_hook_blocks_a_secret_without_any_extra(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    (tmp_path / "app.py").write_text("print('hello')\n")
    git(tmp_path, "add", "app.py")
    git(tmp_path, "commit", "-q", "-m", "first")
    (tmp_path / "app.py").write_text(f"print('hello')\nKEY = '{AWS_KEY}'\nSECRET = '{AWS_SECRET}'\n")
    git(tmp_path, "add", "app.py")
    result = jitsec_without_extras("hook", "pre-commit", cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "app.py" in result.stdout + result.stderr


@pytest.mark.parametrize(("args", "extra"), [
    (("broker", "serve", "--config", "missing.toml"), "broker"),
    (("demo",), "broker"),
    (("scan", "kafka://127.0.0.1:9/topic"), "streams"),
])
def test_a_command_that_needs_a_missing_extra_names_it(
        tmp_path: Path, args: tuple[str, ...], extra: str) -> None:
    result = jitsec_without_extras(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"pip install 'jitsec[{extra}]'" in result.stderr
    assert "Traceback" not in result.stderr
