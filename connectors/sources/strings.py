"""Printable runs of a binary file, like ``strings``: what ``jitsec scan --binary strings`` reads of a
core dump, a heap snapshot or a compiled artefact, where a secret sits among other bytes.

Runs of at least ``MIN_RUN`` printable ASCII characters, and of as many UTF-16LE code units in the
ASCII range (as Windows programs and .NET heaps hold strings), each become one line of text. Memory
is bounded: a file is fed in pieces and at most ``MAX_CARRY`` bytes wait for the next piece, so a run
longer than that (a megabyte of spaces) is cut there.
"""

from __future__ import annotations

import re

MIN_RUN = 8
MAX_CARRY = 64 * 1024
_RUN = re.compile(rb"[\x20-\x7e\t]{%d,}|(?:[\x20-\x7e\t]\x00){%d,}" % (MIN_RUN, MIN_RUN))
_MAY_CONTINUE = bytes(range(0x20, 0x7f)) + b"\t\x00"  # bytes a run may still go on with


class StringsExtractor:
    """Feed a file's bytes piece by piece; each call returns the complete runs found so far, one per
    line (UTF-16LE runs as their ASCII text)."""

    def __init__(self) -> None:
        self._carry = b""

    def feed(self, piece: bytes, *, final: bool = False) -> bytes:
        data = self._carry + piece if self._carry else piece
        cut = len(data)
        if not final:  # the end may be the start of a run that the next piece completes
            window = max(0, len(data) - MAX_CARRY)
            cut = window + len(data[window:].rstrip(_MAY_CONTINUE))
        self._carry = data[cut:]
        lines = [run if b"\0" not in run else run[0::2] for run in _RUN.findall(data, 0, cut)]
        return b"".join(line + b"\n" for line in lines)
