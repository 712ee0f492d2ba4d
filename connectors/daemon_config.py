"""The ``jitsec watch --config FILE`` daemon's settings: a small TOML file, validated up front.

Example::

    sources = ["/var/log/app/app.log", "/var/log/nginx", "kafka://127.0.0.1:9092/logs?group=jitsec"]
    alerts = ["console", "jsonl:/var/log/jitsec/incidents.jsonl"]   # connectors.sinks.factory specs
    checkpoint_dir = "/var/lib/jitsec/checkpoints"
    state_dir = "/var/lib/jitsec/state"      # spools and the leak outbox
    from_end = false                         # followed files without a checkpoint: start at the end?
    broker = "http://127.0.0.1:8200"         # optional: report broker-format leaks for revocation
    rules = ["/etc/jitsec/extra-rules.toml"] # optional extra rule packs
    exclude = ["*.gz", "archive/**"]         # optional: globs left out of followed folders
    scanner_name = "logs-eu-1"               # optional: who alerts say saw it (default jitsec@<hostname>)
    console_url = "https://broker:8470"      # optional: alerts link to <console_url>/console/incidents/<id>

    [http]
    listen = "127.0.0.1:9465"                # /healthz and /metrics

Every error names the file and the key; unknown keys are errors (a typo must not silently disable a
source or a sink).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_LISTEN = "127.0.0.1:9465"
_TOP_KEYS = {"sources", "alerts", "checkpoint_dir", "state_dir", "from_end", "broker", "rules", "http",
             "exclude", "scanner_name", "console_url"}
_HTTP_KEYS = {"listen"}


class DaemonConfigError(ValueError):
    """A daemon config that cannot be used, with the file and key at fault."""


@dataclass(frozen=True, slots=True)
class DaemonConfig:
    sources: tuple[str, ...]
    alerts: tuple[str, ...]
    checkpoint_dir: Path
    state_dir: Path
    listen_host: str
    listen_port: int
    from_end: bool = False
    broker: str | None = None
    rules: tuple[Path, ...] = ()
    exclude: tuple[str, ...] = ()  # globs (checked by the command that applies them)
    scanner_name: str | None = None
    console_url: str | None = None


def load_daemon_config(path: Path) -> DaemonConfig:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DaemonConfigError(f"{path}: cannot read ({exc.strerror})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise DaemonConfigError(f"{path}: not valid TOML ({exc})") from exc
    return parse_daemon_config(raw, label=str(path), base=path.parent)


def parse_daemon_config(raw: dict[str, Any], *, label: str, base: Path) -> DaemonConfig:
    """Validate a parsed TOML document; relative paths are taken from ``base`` (the file's folder)."""

    def fail(key: str, problem: str) -> DaemonConfigError:
        return DaemonConfigError(f"{label}: {key}: {problem}")

    unknown = sorted(set(raw) - _TOP_KEYS)
    if unknown:
        raise fail(unknown[0], f"unknown key (expected one of {', '.join(sorted(_TOP_KEYS))})")
    sources = _strings(raw, "sources", fail)
    if not sources:
        raise fail("sources", "at least one source address is needed")
    http = raw.get("http", {})
    if not isinstance(http, dict):
        raise fail("http", "must be a table")
    unknown = sorted(set(http) - _HTTP_KEYS)
    if unknown:
        raise fail(f"http.{unknown[0]}", "unknown key (expected listen)")
    host, port = _listen(http.get("listen", DEFAULT_LISTEN), fail)
    from_end = raw.get("from_end", False)
    if not isinstance(from_end, bool):
        raise fail("from_end", "must be true or false")
    broker = raw.get("broker")
    if broker is not None and (not isinstance(broker, str) or not broker.startswith(("http://", "https://"))):
        raise fail("broker", "must be an http(s):// URL")
    scanner_name = raw.get("scanner_name")
    if scanner_name is not None and (not isinstance(scanner_name, str) or not scanner_name.strip()):
        raise fail("scanner_name", "must be a non-empty string")
    console_url = raw.get("console_url")
    if console_url is not None and (not isinstance(console_url, str)
                                    or not console_url.startswith(("http://", "https://"))):
        raise fail("console_url", "must be an http(s):// URL")
    return DaemonConfig(
        sources=tuple(sources),
        alerts=tuple(_strings(raw, "alerts", fail) or ["console"]),
        checkpoint_dir=_path(raw, "checkpoint_dir", base, fail) or base / "checkpoints",
        state_dir=_path(raw, "state_dir", base, fail) or base / "state",
        listen_host=host,
        listen_port=port,
        from_end=from_end,
        broker=broker,
        rules=tuple(base / rule for rule in _strings(raw, "rules", fail)),
        exclude=tuple(_strings(raw, "exclude", fail)),
        scanner_name=scanner_name,
        console_url=console_url,
    )


def _strings(raw: dict[str, Any], key: str, fail: Any) -> list[str]:
    value = raw.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise fail(key, "must be a list of non-empty strings")
    return list(value)


def _path(raw: dict[str, Any], key: str, base: Path, fail: Any) -> Path | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise fail(key, "must be a path")
    return base / value


def _listen(value: Any, fail: Any) -> tuple[str, int]:
    if not isinstance(value, str) or ":" not in value:
        raise fail("http.listen", "must be HOST:PORT")
    host, _, port_text = value.rpartition(":")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise fail("http.listen", f"bad port {port_text!r}")
    return host.strip("[]") or "127.0.0.1", int(port_text)
