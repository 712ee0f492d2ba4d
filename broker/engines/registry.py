"""Engine kinds by name, imported on first use (a kind's dependencies load only when configured).

Adding an engine kind to jitsec is one line in ``ENGINE_KINDS``: ``"kind": "module:factory"``, where
the factory takes an ``EngineSettings`` and returns an ``Engine``. A separate package adds a kind
without touching jitsec by declaring an entry point in the ``jitsec.engines`` group (docs/engines.md):
the entry point's name is the kind, its object the factory. Built-in kinds are looked up first, so an
installed package can never replace one. A config section ``[engines.<name>]`` picks its kind with
``kind = "..."`` (default: the section's name).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points

from jitsec.broker.engines.base import Engine, EngineSettings
from jitsec.broker.errors import ConfigError

ENGINE_KINDS: dict[str, str] = {
    "token": "jitsec.broker.engines.token:create",
    "postgres": "jitsec.broker.engines.postgres:create",
    "x509": "jitsec.broker.engines.x509:create",
    "jwt": "jitsec.broker.engines.jwt:create",
    "ssh": "jitsec.broker.engines.ssh:create",
    "kafka": "jitsec.broker.engines.kafka:create",
}
ENTRY_POINT_GROUP = "jitsec.engines"

log = logging.getLogger("jitsec.broker.engines")
Factory = Callable[[EngineSettings], object]


def installed_kinds() -> dict[str, EntryPoint]:
    """Engine kinds other packages declare, by name (a name a built-in kind holds is left out)."""
    found: dict[str, EntryPoint] = {}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        if point.name in ENGINE_KINDS:
            log.warning("entry point %s = %s is ignored: %r is a built-in engine kind",
                        point.name, point.value, point.name)
        else:
            found.setdefault(point.name, point)
    return found


def known_kinds() -> list[str]:
    return sorted({*ENGINE_KINDS, *installed_kinds()})


def build_engine(kind: str, settings: EngineSettings) -> Engine:
    target = ENGINE_KINDS.get(kind)
    if target is not None:
        module_name, _, attribute = target.partition(":")
        factory = getattr(importlib.import_module(module_name), attribute)
        engine = factory(settings)
    else:
        point = installed_kinds().get(kind)
        if point is None:
            raise ConfigError(
                f"engines.{settings.name}: unknown engine kind {kind!r} (known: {', '.join(known_kinds())}; "
                f"a package adds one through the {ENTRY_POINT_GROUP!r} entry-point group)"
            )
        target = f"{point.value} (entry point {kind!r} of {_package_of(point)})"
        engine = _from_entry_point(point, target, settings)
    if not isinstance(engine, Engine):
        raise ConfigError(f"engines.{settings.name}: {target} did not return an Engine "
                          "(name, limits, validate_scopes, issue, revoke, close: docs/engines.md)")
    return engine


def _from_entry_point(point: EntryPoint, target: str, settings: EngineSettings) -> object:
    """Load and call a third-party factory. Its own ``ConfigError`` passes through; anything else
    becomes one naming the package and the error's type only (its message may quote an option, and
    options may hold a password)."""
    try:
        factory = point.load()
    except Exception as error:
        raise ConfigError(f"engines.{settings.name}: cannot load {target}: "
                          f"{type(error).__name__} (is the package installed completely?)") from None
    if not callable(factory):
        raise ConfigError(f"engines.{settings.name}: {target} is not callable (it must name a factory)")
    try:
        return factory(settings)
    except ConfigError:
        raise
    except Exception as error:
        raise ConfigError(f"engines.{settings.name}: {target} failed to build the engine: "
                          f"{type(error).__name__}") from None


def _package_of(point: EntryPoint) -> str:
    dist = getattr(point, "dist", None)
    return f"package {dist.name} {dist.version}" if dist is not None else "an installed package"
