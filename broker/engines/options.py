"""Reading an engine's own options (the rest of its ``[engines.<name>]`` table) into a typed record."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

from jitsec.broker.errors import ConfigError

# keys of every [engines.<name>] table that the config reader consumes before the engine sees them
SHARED_KEYS = frozenset({"kind", "default_ttl_seconds", "max_ttl_seconds"})


Record = TypeVar("Record")


def options_record(record: type[Record], section: str, options: Mapping[str, Any]) -> Record:
    """Build the dataclass ``record`` from ``options``; an unknown key, a missing one or a value the
    record refuses (``TypeError``/``ValueError`` from ``__post_init__``) is a ``ConfigError`` naming
    the section."""
    known = {item.name for item in dataclasses.fields(record)}  # type: ignore[arg-type]
    unknown = sorted(set(options) - known - SHARED_KEYS)
    if unknown:
        raise ConfigError(f"engines.{section}: unknown option(s) {', '.join(unknown)}")
    try:
        return record(**{key: value for key, value in options.items() if key in known})
    except (TypeError, ValueError) as error:
        raise ConfigError(f"engines.{section}: {error}") from None
