"""The command root: every registered command loads, and --version names the rule-set digest."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from jitsec.cli import COMMANDS, main
from scanner.ruleset import load_ruleset


def test_version_names_the_default_rule_set_digest() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert load_ruleset().digest in result.output


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_registered_command_loads_and_explains_itself(name: str) -> None:
    result = CliRunner().invoke(main, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_python_dash_m_runs_the_same_cli() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "jitsec", "--help"], capture_output=True, text=True, check=False, timeout=60
    )
    assert completed.returncode == 0
    for name in COMMANDS:
        assert name in completed.stdout
