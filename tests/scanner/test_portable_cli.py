"""The real CLI on two "machines" (two JITSEC_HOME, so two local fingerprint keys): a baseline made on
one accepts the same findings on the other, and SARIF names each finding the same on both."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

PASSWORD = "Tr0ub4dor&3"  # a weak, guessable password: what a baseline must not give away cheaply


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One compiled rule database for every "machine" of the module (compiling is the slow part)."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def machine(tmp_path: Path, shared_cache: Path):
    def run(name: str, *arguments: str, cwd: Path, extra: dict[str, str] | None = None):
        home = tmp_path / name
        home.mkdir(exist_ok=True)
        if not (home / "cache").exists():
            (home / "cache").symlink_to(shared_cache, target_is_directory=True)
        env = {key: value for key, value in os.environ.items() if key != "JITSEC_FINGERPRINT_KEY"}
        env.update({"JITSEC_HOME": str(home), **(extra or {})})
        return subprocess.run(["jitsec", *arguments], cwd=cwd, env=env, capture_output=True, text=True,
                              check=False)
    return run


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "config").mkdir(parents=True)
    (root / "config" / "db.py").write_text(f'import os\nDB_PASSWORD = "{PASSWORD}"\n')
    return root


def test_a_baseline_made_on_one_machine_accepts_on_another_and_only_the_same_secret(machine, repo) -> None:
    assert machine("a", "scan", ".", cwd=repo).returncode == 1
    created = machine("a", "baseline", "create", ".", cwd=repo)
    assert created.returncode == 0, created.stderr
    text = (repo / ".jitsec.baseline").read_text()
    assert PASSWORD not in text and "scrypt" in text
    elsewhere = machine("b", "scan", "--baseline", ".jitsec.baseline", "-f", "json", ".", cwd=repo)
    assert elsewhere.returncode == 0, elsewhere.stdout + elsewhere.stderr
    assert json.loads(elsewhere.stdout)["summary"]["baselined"] == 1
    absolute = machine("b", "scan", "--baseline", str(repo / ".jitsec.baseline"), str(repo), cwd=repo.parent)
    assert absolute.returncode == 0, absolute.stdout  # paths are relative to the baseline, not the cwd
    (repo / "config" / "db.py").write_text('import os\nDB_PASSWORD = "Another&Pass9"\n')
    changed = machine("b", "scan", "--baseline", ".jitsec.baseline", ".", cwd=repo)
    assert changed.returncode == 1 and "config/db.py:2" in changed.stdout


def test_sarif_fingerprints_are_equal_across_runs_and_machines(machine, repo: Path) -> None:
    runs = [machine(name, "scan", "-f", "sarif", target, cwd=repo) for name, target in
            (("a", "."), ("a", "."), ("b", "."), ("b", str(repo)))]
    prints = [[result["partialFingerprints"] for result in json.loads(run.stdout)["runs"][0]["results"]]
              for run in runs]
    assert prints[0] and all(each == prints[0] for each in prints)
    assert PASSWORD not in json.dumps(prints)


def test_a_baseline_made_under_a_team_key_names_it_and_a_missing_key_is_said(machine, repo: Path) -> None:
    team = {"JITSEC_FINGERPRINT_KEY": "ab" * 32}
    assert machine("a", "baseline", "create", ".", cwd=repo, extra=team).returncode == 0
    document = json.loads((repo / ".jitsec.baseline").read_text())
    assert "key_id" in document and "secret_hash" not in document
    assert machine("b", "scan", "--baseline", ".jitsec.baseline", ".", cwd=repo, extra=team).returncode == 0
    without = machine("b", "scan", "--baseline", ".jitsec.baseline", ".", cwd=repo)
    assert without.returncode == 1 and "JITSEC_FINGERPRINT_KEY" in without.stderr
