"""Where the scanner keeps what it can rebuild: compiled Hyperscan databases, validated rule packs."""

from __future__ import annotations

import os
from pathlib import Path


def default_cache_dir() -> Path:
    """``$JITSEC_HOME/cache``, else ``$XDG_CACHE_HOME/jitsec`` or ``~/.cache/jitsec``."""
    home = os.environ.get("JITSEC_HOME")
    if home:
        return Path(home) / "cache"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "jitsec"
