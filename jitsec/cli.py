"""The ``jitsec`` command line: the project's one composition root.

Commands live in ``jitsec.commands.*`` and are imported only when invoked, so that a pre-commit hook
does not pay for the broker's web framework.
"""

from __future__ import annotations

import importlib

import click

from jitsec import __version__

# name -> "module:attribute" of a click command or group. Each area adds its own line.
COMMANDS: dict[str, str] = {
    "scan": "jitsec.commands.scan:scan",
    "rules": "jitsec.commands.scan:rules_group",
    "baseline": "jitsec.commands.scan:baseline_group",
    "hook": "jitsec.commands.hook:hook",
    "watch": "jitsec.commands.watch:watch",
    "broker": "jitsec.commands.broker:broker_group",
    "audit": "jitsec.commands.broker:audit_group",
    "demo": "jitsec.commands.demo:demo",
    "conformance": "jitsec.commands.conformance:conformance",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, _, attribute = target.partition(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{target} is not a click command")
        return command


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """The version and the digest of the default rule set, the digest every alert is stamped with."""
    if not value or ctx.resilient_parsing:
        return
    from scanner.ruleset import load_ruleset  # noqa: PLC0415 - only --version pays for loading rules

    ruleset = load_ruleset()
    click.echo(f"jitsec {__version__} (rules {ruleset.digest}: {len(ruleset.rules)} default rules)")
    ctx.exit()


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_print_version,
              help="Show the version and the default rule-set digest, and exit.")
def main() -> None:
    """Just-in-time secrets for AI agents, and a leak scanner that revokes what it finds.

    \b
    Scan:    jitsec scan PATH...          find secrets in files, directories, stdin
    Broker:  jitsec broker init / serve   issue per-task, short-lived credentials
    Loop:    jitsec demo                  leak a credential and watch it die
    """
