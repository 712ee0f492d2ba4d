"""Engine kinds by name, imported on first use (a kind's dependencies load only when configured).

Adding an engine kind is one line in ``ENGINE_KINDS``: ``"kind": "module:factory"``, where the factory
takes an ``EngineSettings`` and returns an ``Engine``. A config section ``[engines.<name>]`` picks its
kind with ``kind = "..."`` (default: the section's name).
"""

from __future__ import annotations

import importlib

from jitsec.broker.engines.base import Engine, EngineSettings
from jitsec.broker.errors import ConfigError

ENGINE_KINDS: dict[str, str] = {
    "token": "jitsec.broker.engines.token:create",
    "postgres": "jitsec.broker.engines.postgres:create",
    "kafka": "jitsec.broker.engines.kafka:create",
}


def build_engine(kind: str, settings: EngineSettings) -> Engine:
    target = ENGINE_KINDS.get(kind)
    if target is None:
        raise ConfigError(
            f"engines.{settings.name}: unknown engine kind {kind!r} "
            f"(known: {', '.join(sorted(ENGINE_KINDS))})"
        )
    module_name, _, attribute = target.partition(":")
    factory = getattr(importlib.import_module(module_name), attribute)
    engine = factory(settings)
    if not isinstance(engine, Engine):
        raise ConfigError(f"engines.{settings.name}: {target} did not return an Engine")
    return engine
