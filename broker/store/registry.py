"""Stores by URL scheme, imported on first use. Adding a store is one line in ``STORE_SCHEMES``:
``"scheme": "module:opener"`` where ``opener(url, audit_key) -> Store``."""

from __future__ import annotations

import importlib

from jitsec.broker.custody.base import MacKey
from jitsec.broker.errors import ConfigError
from jitsec.broker.store.base import Store

STORE_SCHEMES: dict[str, str] = {
    "sqlite": "jitsec.broker.store.sqlite:open_sqlite",
    "postgresql": "jitsec.broker.store.postgres:open_postgres",
    "postgres": "jitsec.broker.store.postgres:open_postgres",
}


def open_store(url: str, audit_key: MacKey | bytes) -> Store:
    """Open (without migrating) the store that ``url`` names; ``audit_key`` MACs its audit chain (a
    custody's key, or raw bytes of a file-held key)."""
    scheme = url.partition(":")[0].lower()
    target = STORE_SCHEMES.get(scheme)
    if target is None:
        known = ", ".join(sorted(STORE_SCHEMES))
        raise ConfigError(f"store URL scheme {scheme!r} is not supported (known: {known})")
    module_name, _, attribute = target.partition(":")
    opener = getattr(importlib.import_module(module_name), attribute)
    return opener(url, audit_key)
