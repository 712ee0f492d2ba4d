"""The release path: a wheel built from this tree installs into a clean virtual environment and runs
the main job (``jitsec demo``), with the version the git tag gives.

Slow (a venv and a PyPI install from pip's cache), and the only test that installs anything.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str | Path, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("JITSEC_")}
    return subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def test_the_wheel_installs_in_a_clean_venv_and_runs_the_demo(tmp_path: Path) -> None:
    built = run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                "-w", tmp_path / "dist", ROOT)
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("jitsec-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert any(name.startswith("jitsec/rules/") and name.endswith(".toml") for name in names)
    console = {"jitsec/broker/console/templates/base.html", "jitsec/broker/console/static/console.js"}
    assert console <= set(names), "the console's templates and static files must ship in the wheel"
    strays = {"broker", "scanner", "connectors", "rules", "tests"}
    assert not any(name.split("/")[0] in strays for name in names)

    venv = tmp_path / "venv"
    assert run(sys.executable, "-m", "venv", venv).returncode == 0
    python = venv / "bin" / "python"
    installed = run(python, "-m", "pip", "install", "-q", f"{wheel}[broker]")
    assert installed.returncode == 0, installed.stderr[-2000:]

    version = run(venv / "bin" / "jitsec", "--version", cwd=tmp_path)
    assert version.returncode == 0, version.stderr
    assert version.stdout.startswith("jitsec ") and "0+unknown" not in version.stdout
    wheel_version = wheel.name.split("-")[1]
    assert f"jitsec {wheel_version} " in version.stdout

    demo = run(venv / "bin" / "jitsec", "demo", "--json", cwd=tmp_path, timeout=180)
    assert demo.returncode == 0, demo.stderr[-2000:]
    assert json.loads(demo.stdout)["revoked"] is True
