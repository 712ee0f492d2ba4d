"""What git ignores under a folder, asked of git itself (``.gitignore`` files at every level,
``.git/info/exclude``, ``core.excludesFile``), so that no gitignore matching is re-implemented here.

One ``git ls-files --others --ignored --exclude-standard --directory`` per scanned folder: a folder
that is ignored as a whole (``node_modules/``) is one entry, and the walk does not enter it. Outside a
work tree, or without git, nothing is ignored. Tracked files are never listed (git does not ignore a
file it tracks), nor the repository's own ``.git`` folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class GitIgnored:
    """Paths under one folder that git ignores, relative to it with ``/``; folders end with ``/``."""

    entries: frozenset[str]

    def ignores(self, relative: str, is_dir: bool) -> bool:
        return (relative + "/" if is_dir else relative) in self.entries


def git_ignored(folder: Path) -> GitIgnored | None:
    """What git ignores under ``folder``; None when ``folder`` is not inside a work tree (or git is
    not installed, or fails there). A folder that git ignores as a whole, or one inside such a
    folder, lists nothing: it was named on purpose, so all of it is read."""
    git = shutil.which("git")
    if git is None:
        return None
    inside = subprocess.run([git, "-C", str(folder), "rev-parse", "--is-inside-work-tree"],
                            capture_output=True, check=False)
    if inside.returncode != 0 or inside.stdout.strip() != b"true":
        return None
    listed = subprocess.run(
        [git, "-C", str(folder), "ls-files", "-z", "--others", "--ignored", "--exclude-standard",
         "--directory"],
        capture_output=True, check=False,
    )
    if listed.returncode != 0:
        return None
    names = (os.fsdecode(name) for name in listed.stdout.split(b"\0") if name)  # as os.walk names them
    return GitIgnored(frozenset(name for name in names if name != "./"))
