"""The ignore options, shared by ``scan`` and ``baseline create``.

    @click.command()
    @ignore_options
    def scan(..., ignore: IgnoreOptions) -> None:
        ignores = load_ignores(replace(ignore, gitleaks_config=...), paths)

``--project-config`` is not ``--config``: ``watch --config`` names a daemon's own settings.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from jitsec.pipeline.ignores import IgnoreOptions

F = TypeVar("F", bound=Callable[..., Any])

_OPTIONS = (
    click.option("--exclude", "excludes", metavar="GLOB", multiple=True,
                 help="Leave out paths matching GLOB (a name anywhere, e.g. '*.min.js', or a path from "
                      "the scanned folder, e.g. 'tests/fixtures/**'). Repeatable."),
    click.option("--no-ignore", is_flag=True,
                 help="Also read what git ignores (.gitignore, .git/info/exclude) in work trees."),
    click.option("--project-config", type=click.Path(dir_okay=False, exists=True, path_type=Path),
                 help="Read this project file instead of the nearest .jitsec.toml."),
    click.option("--no-project-config", is_flag=True, help="Do not look for a .jitsec.toml."),
)


def ignore_options(command: F) -> F:
    """Adds ``--exclude``, ``--no-ignore``, ``--project-config``, ``--no-project-config`` and passes
    ``ignore=``."""

    @functools.wraps(command)
    def wrapper(*args: Any, excludes: tuple[str, ...], no_ignore: bool, project_config: Path | None,
                no_project_config: bool, **kwargs: Any) -> Any:
        if project_config is not None and no_project_config:
            raise click.UsageError("--project-config and --no-project-config exclude each other")
        kwargs["ignore"] = IgnoreOptions(gitignore=not no_ignore, excludes=tuple(excludes),
                                         project_config=project_config,
                                         find_project_config=not no_project_config)
        return command(*args, **kwargs)

    decorated: Any = wrapper
    for option in reversed(_OPTIONS):
        decorated = option(decorated)
    return decorated
