"""Errors shared by the connectors' address parsers (kept apart so that sources need not import the
address dispatcher that imports them)."""

from __future__ import annotations


class SourceAddressError(ValueError):
    """An address that names no source this installation can open."""
