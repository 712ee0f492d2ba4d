"""One import root: every package folder is installed under `jitsec`, and nothing else is."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _setuptools_table() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]


def test_every_package_folder_is_listed_under_the_jitsec_root() -> None:
    table = _setuptools_table()
    folders = {name: Path(path) for name, path in table["package-dir"].items()}
    found = set()
    for name, folder in folders.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder)
            found.add(".".join([name, *relative.parts]))
    assert found == set(table["packages"])
    assert all(name == "jitsec" or name.startswith("jitsec.") for name in table["packages"])


def test_the_bare_folder_names_are_not_importable_outside_the_tree(tmp_path: Path) -> None:
    names = "('broker', 'scanner', 'connectors', 'rules')"
    probe = f"import importlib.util as u; print([n for n in {names} if u.find_spec(n)])"
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path,
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_python_m_jitsec_works_inside_a_repository_with_its_own_scanner_package(tmp_path: Path) -> None:
    (tmp_path / "scanner").mkdir()
    (tmp_path / "scanner" / "__init__.py").write_text("raise SystemExit('the wrong scanner package')\n")
    (tmp_path / "broker").mkdir()
    (tmp_path / "broker" / "__init__.py").write_text("raise SystemExit('the wrong broker package')\n")
    (tmp_path / "notes.txt").write_text("nothing secret here\n")
    out = subprocess.run([sys.executable, "-m", "jitsec", "scan", "notes.txt"], cwd=tmp_path,
                         capture_output=True, text=True, check=False)
    assert "wrong" not in out.stdout + out.stderr
    assert out.returncode == 0, out.stderr
