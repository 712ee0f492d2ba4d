"""``--alert`` specs → sinks. The grammar, one spec per sink:

``console`` | ``jsonl:PATH`` | ``webhook:URL[#format=slack&secret_env=NAME]`` |
``syslog+udp://HOST:PORT`` | ``syslog+tcp://HOST:PORT`` | ``syslog+tls://HOST:PORT[?ca=PATH]``

A webhook's options ride in the URL's fragment, which HTTP clients never send: ``format`` (``json``,
the default, or ``slack``) and ``secret_env``, the variable holding the signing secret (default
``JITSEC_WEBHOOK_SECRET``; unsigned when it is unset, an error when a named one is unset).

Other areas add a scheme with one entry in ``_BUILDERS`` (e.g. ``kafka:``). Each builder imports its
sink on use: parsing specs (every ``--alert``, every git hook) must not pay for HTTP or Kafka clients.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from jitsec.kernel.ports import Sink

if TYPE_CHECKING:  # parsing specs (every git hook) must not import the sinks
    from jitsec.connectors.sinks.alert import AlertContext

ALERT_SPEC_HELP = ("console | jsonl:PATH | webhook:URL[#format=slack&secret_env=NAME] | "
                   "syslog+udp://HOST:PORT | syslog+tcp://HOST:PORT | syslog+tls://HOST:PORT[?ca=PATH] | "
                   "kafka://HOST:PORT/TOPIC | elasticsearch[s]://HOST:PORT/INDEX[?ca=PATH&auth=apikey|basic"
                   "&username=NAME] (repeatable)")
WEBHOOK_OPTIONS = {"format": ("json", "slack"), "secret_env": None}


@dataclass(frozen=True, slots=True)
class AlertSpec:
    kind: str  # console, jsonl, webhook, syslog+udp, syslog+tcp, ...
    target: str  # path, URL or host:port; empty for console


def parse_alert_spec(spec: str) -> AlertSpec:
    """Validate one spec; ``ValueError`` says what was expected."""
    spec = spec.strip()
    if spec == "console":
        return AlertSpec("console", "")
    if spec.startswith(("syslog+udp://", "syslog+tcp://", "syslog+tls://")):
        kind, _, rest = spec.partition("://")
        parts = urlsplit("//" + rest)
        try:
            port = parts.port
        except ValueError:
            port = None
        query = parse_qs(parts.query)
        if not parts.hostname or port is None or (set(query) - {"ca"}) or (query and kind != "syslog+tls"):
            raise ValueError(f"alert spec {spec!r}: expected {kind}://HOST:PORT"
                             f"{'[?ca=PATH]' if kind == 'syslog+tls' else ''}")
        ca = f"?ca={query['ca'][-1]}" if "ca" in query else ""
        return AlertSpec(kind, f"{parts.hostname}:{port}{ca}")
    kind, sep, target = spec.partition(":")
    if sep and kind in _BUILDERS and target:
        if kind == "webhook":
            if not target.startswith(("http://", "https://")):
                raise ValueError(f"alert spec {spec!r}: webhook needs an http(s):// URL")
            webhook_options(target)
        return AlertSpec(kind, target)
    raise ValueError(f"alert spec {spec!r} not understood; expected {ALERT_SPEC_HELP}")


def webhook_options(target: str) -> tuple[str, dict[str, str]]:
    """``URL#format=slack&secret_env=NAME`` → ``(URL, options)``; ``ValueError`` for an unknown one."""
    url, _, fragment = target.partition("#")
    options = {key: values[-1] for key, values in parse_qs(fragment, keep_blank_values=True).items()}
    for key, value in options.items():
        if key not in WEBHOOK_OPTIONS:
            raise ValueError(f"webhook option {key!r} unknown; expected {', '.join(WEBHOOK_OPTIONS)}")
        allowed = WEBHOOK_OPTIONS[key]
        if (allowed is not None and value not in allowed) or not value:
            expected = " or ".join(allowed or ("a name",))
            raise ValueError(f"webhook option {key}={value!r}: expected {expected}")
    return url, options


@dataclass(frozen=True, slots=True)
class SinkSetup:
    """What every sink of one process shares: where spools live, what alerts carry, the environment
    secrets are read from."""

    spool_dir: Path
    context: AlertContext | None = None
    env: Mapping[str, str] | None = None

    def variable(self, name: str) -> str | None:
        return (os.environ if self.env is None else self.env).get(name) or None


def _console(target: str, setup: SinkSetup) -> Sink:
    from jitsec.connectors.sinks.console import ConsoleSink  # noqa: PLC0415 - imported on use

    return ConsoleSink()


def _jsonl(target: str, setup: SinkSetup) -> Sink:
    from jitsec.connectors.sinks.jsonl import JsonlSink  # noqa: PLC0415 - imported on use

    return JsonlSink(target, setup.spool_dir)


def _webhook(target: str, setup: SinkSetup) -> Sink:
    from jitsec.connectors.sinks.webhook import SECRET_ENV, WebhookSink  # noqa: PLC0415 - imported on use

    url, options = webhook_options(target)
    variable = options.get("secret_env", SECRET_ENV)
    secret = setup.variable(variable)
    if secret is None and "secret_env" in options:
        raise ValueError(f"webhook {url}: the signing secret variable ${variable} is not set")
    return WebhookSink(url, setup.spool_dir, secret=secret.encode("utf-8") if secret else None,
                       body_format="slack" if options.get("format") == "slack" else "json",
                       context=setup.context)


def _syslog(protocol: str) -> Callable[[str, SinkSetup], Sink]:
    def build(target: str, setup: SinkSetup) -> Sink:
        from jitsec.connectors.sinks.syslog import SyslogSink  # noqa: PLC0415 - imported on use

        address, _, query = target.partition("?ca=")
        host, _, port = address.rpartition(":")
        return SyslogSink(host, int(port), setup.spool_dir, protocol=protocol, context=setup.context,
                          ca_file=query or None)

    return build


def _kafka(target: str, setup: SinkSetup) -> Sink:
    from jitsec.connectors.sinks.kafka import build_kafka_sink  # noqa: PLC0415

    return build_kafka_sink(f"kafka:{target}", setup.spool_dir)


def _elasticsearch(scheme: str) -> Callable[[str, SinkSetup], Sink]:
    def build(target: str, setup: SinkSetup) -> Sink:
        from jitsec.connectors.sinks.elasticsearch import build_elasticsearch_sink  # noqa: PLC0415

        return build_elasticsearch_sink(f"{scheme}:{target}", setup.spool_dir, context=setup.context,
                                        env=setup.env)

    return build


_BUILDERS: dict[str, Callable[[str, SinkSetup], Sink]] = {
    "console": _console,
    "jsonl": _jsonl,
    "webhook": _webhook,
    "syslog+udp": _syslog("udp"),
    "syslog+tcp": _syslog("tcp"),
    "syslog+tls": _syslog("tls"),
    "kafka": _kafka,
    "elasticsearch": _elasticsearch("elasticsearch"),
    "elasticsearchs": _elasticsearch("elasticsearchs"),
}


def build_sink(spec: str, spool_dir: Path | str, *, context: AlertContext | None = None,
               env: Mapping[str, str] | None = None) -> Sink:
    """A ready sink for one ``--alert`` spec; its spool lives under ``spool_dir``. ``context`` is what
    every alert carries (scanner, host, remediation, console link); ``env`` (default ``os.environ``)
    is where secrets (webhook signing secret, Elasticsearch credentials) are read."""
    parsed = parse_alert_spec(spec)
    return _BUILDERS[parsed.kind](parsed.target, SinkSetup(Path(spool_dir), context, env))
