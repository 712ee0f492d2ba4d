"""State files only their owner can read: spools, the leak outbox, the incident book, checkpoints,
the broker's SQLite store. They hold no plaintext secret, but they do hold fingerprints, locations and
the shape of an incident response, which are nobody else's business on a shared machine."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def private_dir(path: Path) -> Path:
    """Create ``path`` (and its parents) if needed; ``path`` itself ends up 0700 when we own it."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(OSError):  # not ours (a shared parent given by the user): leave it
        if path.stat().st_uid == os.getuid():
            path.chmod(0o700)
    return path


def private_file(path: Path) -> Path:
    """Create ``path`` empty if absent, 0600 either way, before a database opens it (SQLite gives its
    -wal and -shm files the mode of the database file)."""
    private_dir(path.parent)
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    with contextlib.suppress(OSError):
        path.chmod(0o600)
    return path
