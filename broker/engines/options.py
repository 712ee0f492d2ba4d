"""Reading an engine's own options (the rest of its ``[engines.<name>]`` table) into its typed config.

One place for the rule every engine follows: an option the config dataclass does not declare is an
error naming it (a typo must not silently fall back to a default), and a value the dataclass refuses
becomes a ``ConfigError`` naming the section.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from jitsec.broker.errors import ConfigError

T = TypeVar("T")
SHARED_OPTIONS = frozenset({"kind", "default_ttl_seconds", "max_ttl_seconds"})  # read by the registry


def engine_config(config_type: type[T], section: str, options: Mapping[str, Any]) -> T:
    """``config_type(**options)`` for a dataclass, with errors that name ``engines.<section>``."""
    known = set(getattr(config_type, "__dataclass_fields__", {}))
    unknown = sorted(set(options) - known - SHARED_OPTIONS)
    if unknown:
        raise ConfigError(f"engines.{section}: unknown option(s) {', '.join(unknown)}")
    try:
        return config_type(**{key: value for key, value in options.items() if key in known})
    except (TypeError, ValueError) as error:
        raise ConfigError(f"engines.{section}: {error}") from None
