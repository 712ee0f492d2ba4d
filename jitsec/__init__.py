"""jitsec: just-in-time secrets for AI agents, and the scanner that revokes them when they leak.

This package is the composition root (the CLI) plus the small kernel both halves share: the
broker-issued credential format and redaction. It imports nothing heavy at import time.
"""

__version__ = "0.1.0"
