"""``jitsec hook pre-commit`` and ``jitsec hook pre-push``: block secrets before they leave the laptop.

pre-commit given FILES scans those files whole: that is how the pre-commit framework calls it (the
staged files on a commit, every file with ``--all-files``, as pre-commit.ci and CI jobs run it), so a
secret already committed fails there too. Without FILES (a plain git hook) it scans only the lines
the staged changes add (``git diff --cached``), located by their line in the new file. pre-push
scans the lines added by the commits being pushed (git's pre-push stdin, or pre-commit's
``PRE_COMMIT_FROM_REF``/``PRE_COMMIT_TO_REF``). Findings already accepted in the baseline pass.
The message names file, line and rule with a redacted preview only, and says how to proceed.
Exit codes: 0 clean, 1 blocked, 2 could not scan.

With a broker (``--broker`` or ``$JITSEC_BROKER_URL``, key from ``$JITSEC_BROKER_KEY``) the hook
takes part in the leak response like ``jitsec scan``: a live broker-issued credential in the added
lines is revoked before the hook exits 1, and the message says per finding what the broker did. A
broker that does not answer costs a few seconds at most: the report waits in the leak outbox of the
state directory for the next run, and the commit is blocked all the same.

This module declares the commands and their options; what they do is in
``jitsec.commands.hook_scan``, which runs the plain ``jitsec hook pre-commit [FILES]`` on its own,
without the command-line framework (start-up time is a hook's budget).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from jitsec.commands.hook_scan import run_pre_commit, run_pre_push
from jitsec.commands.response_options import response_options
from jitsec.response.options import ResponseOptions

rules_option = click.option(
    "--rules", "rules", multiple=True, type=click.Path(path_type=Path, dir_okay=False),
    help="Extra rule pack (TOML); repeatable.",
)  # fmt: skip
baseline_option = click.option(
    "--baseline", "baselines", multiple=True, type=click.Path(path_type=Path, dir_okay=False),
    help="Accepted findings (jitsec or detect-secrets format); repeatable. "
    "Default: .jitsec.baseline and .secrets.baseline at the repository root, when present.",
)  # fmt: skip


@click.group(name="hook")
def hook() -> None:
    """Git hooks: block commits and pushes that add secrets."""


def _help(summary: str, what: str, examples: str) -> str:
    """Help text for a hook; the leak-response part is shared (click cannot format a docstring)."""
    return (
        f"{summary}\n\n"
        "With a broker (--broker URL or $JITSEC_BROKER_URL; the scanner key from $JITSEC_BROKER_KEY "
        "only), a live broker-issued credential found here is revoked before the hook exits, and the "
        "message says per finding: revoked, already dead, unknown to the broker, or waiting in the leak "
        f"outbox (broker unreachable; the {what} is blocked all the same). --alert sends incidents to "
        "sinks. These options are those of `jitsec scan`.\n\n"
        f"\b\nExamples:\n{examples}\n\n"
        f"\b\nExit status: 0 clean, 1 a finding (the {what} is blocked), 2 could not scan."
    )


@hook.command(
    name="pre-commit",
    help=_help("Scan FILES whole, or without FILES the lines added by the staged changes; exit 1 "
               "(blocking the commit) on a finding.\n\nThe pre-commit framework passes the staged "
               "files, or every file with `pre-commit run --all-files` (so CI and pre-commit.ci fail "
               "on a committed secret); a plain git hook passes none. Binary files, missing files and "
               "the baseline files are skipped.",
               "commit",
               "  jitsec hook pre-commit                 the staged changes\n"
               "  jitsec hook pre-commit app.py .env     two files whole\n"
               "  pre-commit run jitsec --all-files      every tracked file, under pre-commit\n"
               "  jitsec hook pre-commit --baseline .jitsec.baseline   accepted findings pass"),
)  # fmt: skip
@click.argument("files", nargs=-1, type=click.Path(path_type=Path))
@rules_option
@baseline_option
@response_options
def pre_commit(
    files: tuple[Path, ...], rules: tuple[Path, ...], baselines: tuple[Path, ...], response: ResponseOptions
) -> None:
    """Git's pre-commit hook (help text in the decorator: its response part is shared)."""
    sys.exit(run_pre_commit(files, rules, baselines, response))


@hook.command(
    name="pre-push",
    help=_help("Scan the lines added by the commits being pushed; exit 1 (blocking the push) on a "
               "finding.\n\nGit runs it as `pre-push REMOTE URL` with one `LOCAL_REF LOCAL_ID "
               "REMOTE_REF REMOTE_ID` line per pushed ref on stdin; under the pre-commit framework "
               "the range comes from its environment.", "push",
               "  jitsec hook pre-push origin git@example.org:app.git < refs   as git runs it\n"
               "  jitsec hook pre-push --from-ref origin/main --to-ref HEAD   one range, by hand"),
)  # fmt: skip
@click.argument("remote", required=False)
@click.argument("url", required=False)
@click.option("--from-ref", help="Scan FROM_REF..TO_REF instead of reading git's pre-push input.")
@click.option("--to-ref", help="See --from-ref (default HEAD).")
@rules_option
@baseline_option
@response_options
def pre_push(
    *,
    remote: str | None,
    url: str | None,
    from_ref: str | None,
    to_ref: str | None,
    rules: tuple[Path, ...],
    baselines: tuple[Path, ...],
    response: ResponseOptions,
) -> None:
    """Git's pre-push hook (help text in the decorator: its response part is shared)."""
    sys.exit(run_pre_push(remote, from_ref, to_ref, rules=rules, baselines=baselines, response=response))
