"""The ``jitsec`` command line: the project's one composition root.

Commands live in ``jitsec.commands.*`` and are imported only when invoked, so that a pre-commit hook
does not pay for the broker's web framework.
"""

from __future__ import annotations

import importlib
import sys

import click

import jitsec

# name -> ("module:attribute" of a click command or group, its one-line summary). Each area adds its
# own line. The summary is the command's short help: `jitsec --help` lists every command without
# importing any (the broker's web framework alone takes 0.3 s to import).
COMMANDS: dict[str, tuple[str, str]] = {
    "scan": ("jitsec.commands.scan:scan",
             "Find secrets in files, directories, stdin, git history, Kafka and Elasticsearch."),
    "rules": ("jitsec.commands.scan:rules_group", "Inspect and validate rule packs."),
    "baseline": ("jitsec.commands.scan:baseline_group",
                 "Accept today's findings so later scans report only new ones."),
    "hook": ("jitsec.commands.hook:hook", "Git hooks: block commits and pushes that add secrets."),
    "ci": ("jitsec.commands.ci:ci",
           "Scan the checkout (or a push or merge request's commits) in CI; exit 1 on a secret."),
    "watch": ("jitsec.commands.watch:watch",
              "Follow files, stdin, git refs, Kafka or Elasticsearch until stopped; a daemon with --config."),
    "broker": ("jitsec.commands.broker:broker_group",
               "The just-in-time secrets broker: init a config, serve the API, manage principals, "
               "quarantine an agent."),
    "incidents": ("jitsec.commands.incidents:incidents_group",
                  "The fleet's incidents: list, show, acknowledge, resolve, assign, annotate."),
    "audit": ("jitsec.commands.broker:audit_group",
              "Verify or export the broker's tamper-evident audit chain."),
    "demo": ("jitsec.commands.demo:demo", "Leak a broker-issued token into a log and watch it die."),
    "conformance": ("jitsec.commands.conformance:conformance",
                    "Run AG-304's tests 8.1-8.7 against a broker and write a scored report."),
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        target, summary = entry
        module_name, _, attribute = target.partition(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{target} is not a click command")
        command.short_help = summary
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from ``COMMANDS`` alone, without importing a command module."""
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """The version and the digest of the default rule set, the digest every alert is stamped with."""
    if not value or ctx.resilient_parsing:
        return
    from jitsec.scanner.ruleset import load_ruleset  # noqa: PLC0415 - only --version pays for loading rules

    ruleset = load_ruleset()
    click.echo(f"jitsec {jitsec.__version__} (rules {ruleset.digest}: {len(ruleset.rules)} default rules)")
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


# The extra that provides each optional module (pyproject.toml's [project.optional-dependencies]).
EXTRA_OF_MODULE = {
    "fastapi": "broker", "starlette": "broker", "pydantic": "broker", "uvicorn": "broker",
    "psycopg": "postgres",
    "kafka": "streams", "crc32c": "streams", "elasticsearch": "streams", "elastic_transport": "streams",
    "confluent_kafka": "confluent",
}  # fmt: skip


def missing_extra_message(error: ModuleNotFoundError) -> str | None:
    """What to install when ``error`` is an optional dependency that is not installed, else None."""
    top = (error.name or "").partition(".")[0]
    extra = EXTRA_OF_MODULE.get(top)
    if extra is None:
        return None
    return (f"jitsec: this needs the optional {extra!r} dependencies ({top} is not installed): "
            f"pip install 'jitsec[{extra}]'")


def run() -> None:
    """The console script: ``main``, with a missing optional dependency reported as what to install
    (exit 2) rather than a traceback."""
    try:
        main()
    except ModuleNotFoundError as error:
        message = missing_extra_message(error)
        if message is None:
            raise
        click.echo(message, err=True)
        sys.exit(2)
