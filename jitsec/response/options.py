"""The leak response's settings and its assembly: ``ResponseOptions`` (what the user asked for) →
``build_response`` → ``ResponseRuntime``, the pipeline stage that reports, revokes and alerts.

The command-line options that fill ``ResponseOptions`` live with the CLI
(``jitsec.commands.response_options``). The broker's URL comes from ``--broker`` or
``JITSEC_BROKER_URL``; the scanner principal's key ONLY from ``JITSEC_BROKER_KEY`` (a command-line
argument would land in shell history and ``ps``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from jitsec.kernel.leaks import LeakScope
from jitsec.kernel.ports import Sink
from jitsec.kernel.records import Chunk, Finding

if TYPE_CHECKING:  # imported by build_response: declaring the options (a git hook) stays cheap
    from jitsec.broker.client import BrokerClient
    from jitsec.response.live_cache import LiveFingerprintCache
    from jitsec.response.responder import Responder, ResponderSettings

KEY_ENV = "JITSEC_BROKER_KEY"
URL_ENV = "JITSEC_BROKER_URL"
STATE_ENV = "JITSEC_STATE_DIR"

def default_state_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$JITSEC_STATE_DIR``, else ``$JITSEC_HOME/state``, else ``$XDG_STATE_HOME/jitsec`` or
    ``~/.local/state/jitsec``: where alert spools and the leak outbox live between runs."""
    env = os.environ if env is None else env
    if env.get(STATE_ENV):
        return Path(env[STATE_ENV])
    if env.get("JITSEC_HOME"):
        return Path(env["JITSEC_HOME"]) / "state"
    base = Path(env["XDG_STATE_HOME"]) if env.get("XDG_STATE_HOME") else Path.home() / ".local" / "state"
    return base / "jitsec"


class ResponseSetupError(ValueError):
    """The leak response cannot start as configured; the message says what is missing."""


@dataclass(frozen=True, slots=True)
class ResponseOptions:
    broker_url: str | None = None
    alerts: tuple[str, ...] = ()
    on_leak: LeakScope | None = None
    state_dir: Path = field(default_factory=default_state_dir)
    broker_key: str | None = field(default=None, repr=False)
    # who sent an alert, and where alerts link to; None: from the environment when alerts are built
    # ($JITSEC_SCANNER_NAME or jitsec@<hostname>; $JITSEC_CONSOLE_URL), which a hook run never pays for
    scanner_name: str | None = None
    console_url: str | None = None

    @property
    def enabled(self) -> bool:
        """Anything to do beyond printing findings: a broker to tell, or sinks to alert."""
        return bool(self.broker_url or self.alerts)


@dataclass(slots=True)
class ResponseRuntime:
    """The leak response as a pipeline stage: ``process`` reports broker-format hits (and revokes what
    is live), raises incidents and returns the findings with ``broker`` set; ``close`` flushes and
    stops everything (cache, responder, client)."""

    responder: Responder
    client: BrokerClient | None = None
    cache: LiveFingerprintCache | None = None
    close_timeout: float = 5.0

    @property
    def live_fingerprints(self) -> Callable[[str], bool] | None:
        """The ``Scanner(live_fingerprints=...)`` hook, or None without a broker."""
        return self.cache.is_live if self.cache is not None else None

    def process(self, chunk: Chunk, findings: list[Finding]) -> list[Finding]:
        return self.responder.respond(chunk, findings) if findings else findings

    def close(self, timeout: float | None = None) -> None:
        if self.cache is not None:
            self.cache.close()
        self.responder.close(self.close_timeout if timeout is None else timeout)
        if self.client is not None:
            self.client.close()


def build_response(options: ResponseOptions, *, extra_sinks: tuple[Sink, ...] = (),
                   settings: ResponderSettings | None = None, live_cache: bool = True,
                   client: BrokerClient | None = None, rules_digest: str = "",
                   close_timeout: float = 5.0, remediations: Mapping[str, str] | None = None,
                   ) -> ResponseRuntime:
    """Sinks from the ``--alert`` specs, the broker client and live-fingerprint cache, the responder.

    Raises ``ResponseSetupError`` when a broker URL is set (option, env or daemon config) without
    ``JITSEC_BROKER_KEY``: failing at start beats retrying a 401 forever."""
    from jitsec.broker.client import BrokerClient  # noqa: PLC0415
    from jitsec.connectors.sinks import build_sink  # noqa: PLC0415
    from jitsec.connectors.sinks.alert import CONSOLE_ENV, AlertContext, default_scanner_name  # noqa: PLC0415
    from jitsec.response.live_cache import LiveFingerprintCache  # noqa: PLC0415
    from jitsec.response.responder import Responder, ResponderSettings  # noqa: PLC0415

    if client is None and options.broker_url and not options.broker_key:
        raise ResponseSetupError(f"a broker is configured ({options.broker_url}) but ${KEY_ENV} is not set")
    context = AlertContext(scanner=options.scanner_name or default_scanner_name(),
                           console_url=options.console_url or os.environ.get(CONSOLE_ENV) or None,
                           remediations=dict(remediations or {}))
    try:
        sinks = [build_sink(spec, options.state_dir / "spool", context=context) for spec in options.alerts]
    except ValueError as error:  # a sink's secret or CA missing: say so at start
        raise ResponseSetupError(str(error)) from None
    sinks.extend(extra_sinks)
    if client is None and options.broker_url:
        client = BrokerClient(options.broker_url, key=options.broker_key, timeout=5.0)
    cache = None
    if client is not None and live_cache:
        cache = LiveFingerprintCache(client)
        cache.start()
    base = settings or ResponderSettings()
    if options.on_leak is not None:
        base = ResponderSettings(on_leak=options.on_leak, incidents=base.incidents,
                                 tick_seconds=base.tick_seconds, outbox_backoff=base.outbox_backoff)
    responder = Responder(sinks, broker=client, state_dir=options.state_dir, settings=base, live_cache=cache,
                          rules_digest=rules_digest)
    return ResponseRuntime(responder=responder, client=client, cache=cache, close_timeout=close_timeout)
