"""Builds a running broker from its configuration: the one place the parts are wired together."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from jitsec.broker.audit_anchor import AnchorWriter
from jitsec.broker.config import BrokerConfig
from jitsec.broker.custody.base import Custody
from jitsec.broker.custody.engine_secrets import resolve_secret_options
from jitsec.broker.custody.opening import open_custody
from jitsec.broker.custody.signers import CustodyKeys
from jitsec.broker.engines.base import Engine
from jitsec.broker.engines.postgres_reconciler import Reconciler
from jitsec.broker.engines.registry import build_engine
from jitsec.broker.incidents.desk import IncidentDesk, derive_fleet_key
from jitsec.broker.lifecycle import LeaseMachine
from jitsec.broker.metrics import BrokerMetrics
from jitsec.broker.reaper import Reaper
from jitsec.broker.revoker import Alert, Revoker, log_alert
from jitsec.broker.service import BrokerService
from jitsec.broker.store.base import Store
from jitsec.broker.store.registry import open_store


@dataclass(slots=True)
class Broker:
    config: BrokerConfig
    store: Store
    engines: dict[str, Engine]
    service: BrokerService
    reaper: Reaper
    metrics: BrokerMetrics
    custody: Custody  # where the master keys live; closed last

    def close(self) -> None:
        self.reaper.stop()
        for engine in self.engines.values():
            engine.close()
        self.store.close()
        self.custody.close()


def build_broker(
    config: BrokerConfig,
    *,
    clock: Callable[[], float] = time.time,
    alert: Alert = log_alert,
    engines: dict[str, Engine] | None = None,
) -> Broker:
    """Open the key custody (a ``CustodyError`` when the token or its PIN fails), open and migrate the
    store, build the engines (or take the given ones, their secrets opened), wire service and reaper."""
    custody = open_custody(config.keys, config.audit_key)
    try:
        store = open_store(config.store_url, custody.audit)
    except BaseException:
        custody.close()
        raise
    built: dict[str, Engine] = {}
    base_dir = Path(config.source).parent if config.source != "<memory>" else None
    try:
        store.migrate()
        if engines is None:
            for name, section in config.engines.items():
                options = resolve_secret_options(name, section.settings.options, custody, base_dir)
                keys = CustodyKeys(custody, section.settings.config_dir)  # pkcs11:LABEL keys in its token
                built[name] = build_engine(section.kind, replace(section.settings, options=options,
                                                                 signing_keys=keys))
        else:
            built = dict(engines)
    except BaseException:
        for engine in built.values():
            engine.close()
        store.close()
        custody.close()
        raise
    metrics = BrokerMetrics()
    leases = LeaseMachine(store)  # the one writer of lease state, for issue and revocation alike
    revoker = Revoker(
        store, built, config.reaper.retry, clock=clock, metrics=metrics, alert=alert, leases=leases
    )
    service = BrokerService(
        store,
        built,
        config.policy,
        revoker,
        grant_ttl_seconds=config.limits.grant_ttl_seconds,
        on_grant_replay=config.on_grant_replay,
        clock=clock,
        metrics=metrics,
        leases=leases,
        incidents=IncidentDesk(store.incidents, clock=clock, fleet_key=derive_fleet_key(custody.audit),
                               metrics=metrics),
    )
    reconciler = Reconciler(store, built, clock=clock)  # drops engine credentials no lease backs
    chores: list[Callable[[], object]] = [reconciler.tick]
    if config.audit.anchor is not None:  # checkpoints of the audit head, outside the store
        chores.append(AnchorWriter(store, custody.anchor, config.audit.anchor, config.audit.anchor_seconds,
                                   clock=clock).tick)
    reaper = Reaper(store, revoker, config.reaper, clock, housekeeping=lambda: [chore() for chore in chores],
                    passes=metrics.reaper_passes.inc)
    return Broker(config=config, store=store, engines=built, service=service, reaper=reaper, metrics=metrics,
                  custody=custody)
