"""The command root: every registered command loads, and --version names the rule-set digest."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner
from jitsec.scanner.ruleset import load_ruleset

from jitsec.cli import COMMANDS, main


def test_version_names_the_default_rule_set_digest() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert load_ruleset().digest in result.output


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_registered_command_loads_and_explains_itself(name: str) -> None:
    result = CliRunner().invoke(main, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def _leaf_commands() -> list[tuple[str, ...]]:
    import click  # noqa: PLC0415

    context = click.Context(main)
    found: list[tuple[str, ...]] = []

    def walk(command: click.Command, path: tuple[str, ...]) -> None:
        if isinstance(command, click.Group):
            for name in command.list_commands(context):
                sub = command.get_command(context, name)
                assert sub is not None
                walk(sub, (*path, name))
        else:
            found.append(path)

    walk(main, ())
    return found


@pytest.mark.parametrize("path", _leaf_commands(), ids=" ".join)
def test_every_command_help_teaches_with_examples_and_exit_status(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(main, [*path, "--help"], terminal_width=120)
    assert result.exit_code == 0, result.output
    assert "Example" in result.output, f"`jitsec {' '.join(path)} --help` has no example"
    assert any(words in result.output for words in ("Exit status", "Exit code")), (
        f"`jitsec {' '.join(path)} --help` does not say its exit status")


def test_python_dash_m_runs_the_same_cli() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "jitsec", "--help"], capture_output=True, text=True, check=False, timeout=60
    )
    assert completed.returncode == 0
    for name in COMMANDS:
        assert name in completed.stdout


def test_the_root_help_lists_every_command_without_importing_one() -> None:
    """`jitsec --help` is read by people: it answers at once instead of loading the broker's web stack."""
    probe = (
        "import sys\n"
        "from jitsec.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith(('jitsec.commands.', 'broker', 'fastapi'))))\n"
    )
    completed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=False,
                               timeout=60)  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip().splitlines()[-1] == "[]"
    for name, (_, summary) in COMMANDS.items():
        assert name in completed.stdout and summary.split()[0] in completed.stdout
