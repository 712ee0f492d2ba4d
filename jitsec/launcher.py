"""The ``jitsec`` console script's first step. A pre-commit hook runs on every commit, and most
runs are the plain ``jitsec hook pre-commit [FILES]``: that form runs straight away, without
importing the command-line framework; everything else goes to ``jitsec.cli``, which parses and
checks every option as usual (and no other command pays for the hook's imports)."""

from __future__ import annotations

import sys

HOOK = ["hook", "pre-commit"]


def run() -> None:
    if sys.argv[1:3] == HOOK:
        from jitsec.commands.hook_scan import plain_pre_commit  # noqa: PLC0415 - the hook's form only

        status = plain_pre_commit(sys.argv[1:])
        if status is not None:
            sys.exit(status)
    from jitsec.cli import run as run_cli  # noqa: PLC0415 - the full command line, for the rest

    run_cli()
