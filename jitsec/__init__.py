"""jitsec: just-in-time secrets for AI agents, and the scanner that revokes them when they leak.

This package is the composition root (the CLI) plus the small kernel both halves share: the
broker-issued credential format and redaction. It imports nothing heavy at import time.
"""

from __future__ import annotations


def __getattr__(name: str) -> str:
    """``jitsec.__version__``: the installed distribution's version, set from the git tag at build
    time. Read on first use, so that importing jitsec (every hook run) does not pay for metadata."""
    if name != "__version__":
        raise AttributeError(f"module 'jitsec' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    try:
        return version("jitsec")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "0+unknown"
