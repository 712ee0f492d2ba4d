"""``--alert`` specs → sinks. The grammar, one spec per sink:

``console`` | ``jsonl:PATH`` | ``webhook:URL`` | ``syslog+udp://HOST:PORT`` | ``syslog+tcp://HOST:PORT``

Other areas add a scheme with one entry in ``_BUILDERS`` (e.g. ``kafka:``). Each builder imports its
sink on use: parsing specs (every ``--alert``, every git hook) must not pay for HTTP or Kafka clients.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from jitsec.kernel.ports import Sink

ALERT_SPEC_HELP = ("console | jsonl:PATH | webhook:URL | syslog+udp://HOST:PORT | "
                   "syslog+tcp://HOST:PORT | kafka://HOST:PORT/TOPIC | elasticsearch://HOST:PORT/INDEX "
                   "(repeatable)")


@dataclass(frozen=True, slots=True)
class AlertSpec:
    kind: str  # console, jsonl, webhook, syslog+udp, syslog+tcp, ...
    target: str  # path, URL or host:port; empty for console


def parse_alert_spec(spec: str) -> AlertSpec:
    """Validate one spec; ``ValueError`` says what was expected."""
    spec = spec.strip()
    if spec == "console":
        return AlertSpec("console", "")
    if spec.startswith(("syslog+udp://", "syslog+tcp://")):
        kind, _, rest = spec.partition("://")
        parts = urlsplit("//" + rest)
        if not parts.hostname or parts.port is None:
            raise ValueError(f"alert spec {spec!r}: expected {kind}://HOST:PORT")
        return AlertSpec(kind, f"{parts.hostname}:{parts.port}")
    kind, sep, target = spec.partition(":")
    if sep and kind in _BUILDERS and target:
        if kind == "webhook" and not target.startswith(("http://", "https://")):
            raise ValueError(f"alert spec {spec!r}: webhook needs an http(s):// URL")
        return AlertSpec(kind, target)
    raise ValueError(f"alert spec {spec!r} not understood; expected {ALERT_SPEC_HELP}")


def _console(target: str, spool_dir: Path) -> Sink:
    from jitsec.connectors.sinks.console import ConsoleSink  # noqa: PLC0415 - imported on use

    return ConsoleSink()


def _jsonl(target: str, spool_dir: Path) -> Sink:
    from jitsec.connectors.sinks.jsonl import JsonlSink  # noqa: PLC0415 - imported on use

    return JsonlSink(target, spool_dir)


def _webhook(target: str, spool_dir: Path) -> Sink:
    from jitsec.connectors.sinks.webhook import WebhookSink  # noqa: PLC0415 - imported on use

    return WebhookSink(target, spool_dir)


def _syslog(protocol: str) -> Callable[[str, Path], Sink]:
    def build(target: str, spool_dir: Path) -> Sink:
        from jitsec.connectors.sinks.syslog import SyslogSink  # noqa: PLC0415 - imported on use

        host, _, port = target.rpartition(":")
        return SyslogSink(host, int(port), spool_dir, protocol=protocol)

    return build


_BUILDERS: dict[str, Callable[[str, Path], Sink]] = {
    "console": _console,
    "jsonl": _jsonl,
    "webhook": _webhook,
    "syslog+udp": _syslog("udp"),
    "syslog+tcp": _syslog("tcp"),
    "kafka": lambda target, spool_dir: _streaming("kafka", target, spool_dir),
    "elasticsearch": lambda target, spool_dir: _streaming("elasticsearch", target, spool_dir),
}


def _streaming(kind: str, target: str, spool_dir: Path) -> Sink:
    """``kafka://HOST:PORT/TOPIC`` and ``elasticsearch://HOST:PORT/INDEX``."""
    if kind == "kafka":
        from jitsec.connectors.sinks.kafka import build_kafka_sink  # noqa: PLC0415

        return build_kafka_sink(f"kafka:{target}", spool_dir)
    from jitsec.connectors.sinks.elasticsearch import build_elasticsearch_sink  # noqa: PLC0415

    return build_elasticsearch_sink(f"elasticsearch:{target}", spool_dir)


def build_sink(spec: str, spool_dir: Path | str) -> Sink:
    """A ready sink for one ``--alert`` spec; its spool lives under ``spool_dir``."""
    parsed = parse_alert_spec(spec)
    return _BUILDERS[parsed.kind](parsed.target, Path(spool_dir))
