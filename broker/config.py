"""The broker's TOML configuration, read once into typed settings grouped by concern.

Every field is documented in docs/broker.md. Unknown keys are refused (a typo must not silently
disable a limit); every error names the file and the field. Principals' keys are stored as SHA-256
hashes only; the audit key (HMAC of the hash chain) is the one secret the file holds in a file custody,
so it is written with mode 0600; with ``[keys] custody = "pkcs11"`` the file holds no key at all.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import regex
from jitsec.broker.custody.base import HSM
from jitsec.broker.custody.settings import CUSTODY_NAMES, KeySettings, TokenSettings
from jitsec.broker.engines.base import EngineLimits, EngineSettings
from jitsec.broker.errors import ConfigError
from jitsec.broker.leaks import LeakScope, LeakSettings
from jitsec.broker.model import PRINCIPAL_ROLES, Role
from jitsec.broker.policy import AgentPolicy, EnginePolicy, Policy, ReplayAction
from jitsec.broker.revocation import RetryPolicy

_HEX64 = regex.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    role: Role
    key_sha256: str


@dataclass(frozen=True, slots=True)
class Limits:
    grant_ttl_seconds: int = 300
    max_request_bytes: int = 65536


@dataclass(frozen=True, slots=True)
class AuditSettings:
    """``[audit]``: where checkpoints of the chain's head go (``broker.audit_anchor``), and how often."""

    anchor: Path | None = None
    anchor_seconds: float = 60.0


@dataclass(frozen=True, slots=True)
class ConsoleSettings:
    """``[console]``: the analysts' web pages at /console (docs/console.md)."""

    enabled: bool = True
    idle_minutes: int = 30  # a session with no request for this long ends
    max_hours: int = 8  # and every session ends this long after sign-in
    sign_in_failures: int = 5  # refused sign-ins from one address per window before it waits
    sign_in_window_seconds: int = 300


@dataclass(frozen=True, slots=True)
class ReaperSettings:
    enabled: bool = True
    max_sleep_seconds: float = 0.2
    coalesce_seconds: float = 0.05  # a pass waits this long past the next deadline to take its neighbours too
    batch_size: int = 500
    retry: RetryPolicy = field(default_factory=RetryPolicy)


@dataclass(frozen=True, slots=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8470
    tls_cert: str | None = None
    tls_key: str | None = None
    workers: int = 1
    public_url: str = ""  # where clients reach the broker; "" = derived from host, port and TLS

    def url(self) -> str:
        """The broker's public URL (a JWT's issuer): ``public_url``, or what host and port give."""
        if self.public_url:
            return self.public_url
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls_cert else 'http'}://{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class EngineConfig:
    kind: str
    settings: EngineSettings


@dataclass(frozen=True, slots=True)
class BrokerConfig:
    store_url: str
    audit_key: bytes
    principals: tuple[Principal, ...]
    policy: Policy
    engines: Mapping[str, EngineConfig]
    limits: Limits = field(default_factory=Limits)
    reaper: ReaperSettings = field(default_factory=ReaperSettings)
    server: ServerSettings = field(default_factory=ServerSettings)
    source: str = "<memory>"
    leaks: LeakSettings = field(default_factory=LeakSettings)  # [leaks]: see docs/response.md
    audit: AuditSettings = field(default_factory=AuditSettings)  # [audit]: anchoring
    keys: KeySettings = field(default_factory=KeySettings)  # [keys]: file or PKCS#11 custody
    on_grant_replay: ReplayAction = ReplayAction.END_TASK
    console: ConsoleSettings = field(default_factory=ConsoleSettings)  # [console]: docs/console.md


class _Reader:
    """Pops typed fields from one TOML table, so leftovers are reported as unknown keys."""

    def __init__(self, source: str, where: str, table: Any) -> None:
        if not isinstance(table, dict):
            raise ConfigError(f"{source}: {where} must be a table")
        self.source, self.where, self.table = source, where, dict(table)

    def error(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"{self.source}: {self.where}.{key} {message}")

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
        if key not in self.table:
            if default is ...:
                raise self.error(key, "is required")
            return default
        value = self.table.pop(key)
        if isinstance(value, bool) and kind in (int, float):
            raise self.error(key, f"must be a {getattr(kind, '__name__', kind)}")
        if kind is float and isinstance(value, int):
            value = float(value)
        if not isinstance(value, kind):
            raise self.error(key, f"must be a {getattr(kind, '__name__', kind)}, not {type(value).__name__}")
        return value

    def positive(self, key: str, default: Any = ...) -> Any:
        value = self.get(key, int, default)
        if value is not None and value <= 0:
            raise self.error(key, "must be positive")
        return value

    def strings(self, key: str) -> tuple[str, ...]:
        value = self.get(key, list)
        if not all(isinstance(v, str) and v for v in value):
            raise self.error(key, "must be a list of non-empty strings")
        return tuple(value)

    def done(self) -> None:
        if self.table:
            raise ConfigError(f"{self.source}: {self.where}: unknown key(s) {', '.join(sorted(self.table))}")


def load_config(path: str | Path) -> BrokerConfig:
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        hint = f"create one with `jitsec broker init --config {path}`"
        raise ConfigError(f"{path}: no such file ({hint})") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: invalid TOML: {error}") from None
    return parse_config(raw, source=str(path), base_dir=path.parent)


def parse_config(
    raw: Mapping[str, Any], source: str = "<memory>", base_dir: Path | None = None
) -> BrokerConfig:
    top = _Reader(source, "(top)", raw)
    broker = _Reader(source, "broker", top.get("broker", dict))
    store_url = _resolve_store(broker.get("store", str), base_dir)
    keys = _keys(source, top.get("keys", dict, {}))
    audit_key = _audit_key(broker, keys)
    limits = Limits(
        grant_ttl_seconds=broker.positive("grant_ttl_seconds", 300),
        max_request_bytes=broker.positive("max_request_bytes", 65536),
    )
    on_grant_replay = _replay_action(broker)
    broker.done()
    server = _server(source, top.get("server", dict, {}), base_dir)
    config = BrokerConfig(
        store_url=store_url,
        audit_key=audit_key,
        principals=_principals(source, top.get("principals", list, [])),
        engines=_engines(source, top.get("engines", dict, {"token": {}}), server.url(), base_dir),
        policy=_policy(source, top.get("policy", list, [])),
        limits=limits,
        reaper=_reaper(source, top.get("reaper", dict, {})),
        audit=_audit(source, top.get("audit", dict, {}), base_dir),
        server=server,
        source=source,
        leaks=_leaks(source, top.get("leaks", dict, {})),
        keys=keys,
        on_grant_replay=on_grant_replay,
        console=_console(source, top.get("console", dict, {})),
    )
    top.done()
    for entry in config.policy.entries:
        for engine in entry.engines:
            if engine not in config.engines:
                raise ConfigError(
                    f"{source}: policy for agent {entry.agent!r} names engine {engine!r}, "
                    "which has no [engines.<name>] section"
                )
    return config


def _audit_key(broker: _Reader, keys: KeySettings) -> bytes:
    """``[broker] audit_key`` in a file custody; absent when a token holds the keys (b"" then)."""
    if keys.custody == HSM:
        if "audit_key" in broker.table:
            raise broker.error("audit_key", 'must not be set with [keys] custody = "pkcs11" (in the token)')
        return b""
    audit_key = broker.get("audit_key", str)
    if not regex.fullmatch(r"[0-9a-f]{64}", audit_key):
        raise broker.error("audit_key", "must be 64 hex characters (32 random bytes)")
    return bytes.fromhex(audit_key)


def _keys(source: str, table: dict[str, Any]) -> KeySettings:
    """``[keys] custody = "file" | "pkcs11"``, with ``module``, ``token`` and key labels for a token."""
    reader = _Reader(source, "keys", table)
    name = reader.get("custody", str, "file")
    if name not in CUSTODY_NAMES:
        raise reader.error("custody", "must be \"file\" or \"pkcs11\"")
    if CUSTODY_NAMES[name] != HSM:
        reader.done()
        return KeySettings()
    defaults = TokenSettings(module="", token="")
    token = TokenSettings(
        module=reader.get("module", str),
        token=reader.get("token", str),
        audit_key_label=reader.get("audit_key_label", str, defaults.audit_key_label),
        anchor_key_label=reader.get("anchor_key_label", str, defaults.anchor_key_label),
        kek_label=reader.get("kek_label", str, defaults.kek_label),
    )
    reader.done()
    if not token.module or not token.token:
        raise ConfigError(f"{source}: keys.module and keys.token must name the PKCS#11 library and token")
    return KeySettings(custody=HSM, token=token)


def _replay_action(broker: _Reader) -> ReplayAction:
    value = broker.get("on_grant_replay", str, ReplayAction.END_TASK.value)
    try:
        return ReplayAction(value)
    except ValueError:
        allowed = ", ".join(f'"{action.value}"' for action in ReplayAction)
        raise broker.error("on_grant_replay", f"must be one of {allowed}") from None


def _resolve_store(url: str, base_dir: Path | None) -> str:
    if url.startswith("sqlite://") and base_dir is not None:
        path = url.removeprefix("sqlite://")
        if path and not path.startswith("/"):
            return "sqlite://" + str((base_dir / path).resolve())
    return url


def _principals(source: str, items: list[Any]) -> tuple[Principal, ...]:
    principals = []
    names: set[str] = set()
    roles = {r.value: r for r in PRINCIPAL_ROLES}
    for i, item in enumerate(items):
        reader = _Reader(source, f"principals[{i}]", item)
        name = reader.get("name", str)
        role = reader.get("role", str)
        digest = reader.get("key_sha256", str)
        reader.done()
        if role not in roles:
            raise reader.error("role", f"must be one of {', '.join(roles)}")
        if not _HEX64.fullmatch(digest):
            raise reader.error("key_sha256", "must be 64 lowercase hex characters")
        if name in names:
            raise reader.error("name", f"{name!r} is used twice")
        names.add(name)
        principals.append(Principal(name=name, role=roles[role], key_sha256=digest))
    return tuple(principals)


def _engines(source: str, table: dict[str, Any], public_url: str = "",
             base_dir: Path | None = None) -> dict[str, EngineConfig]:
    engines = {}
    for name, section in table.items():
        reader = _Reader(source, f"engines.{name}", section)
        kind = reader.get("kind", str, name)
        try:
            limits = EngineLimits(
                default_ttl_seconds=reader.positive("default_ttl_seconds", 300),
                max_ttl_seconds=reader.positive("max_ttl_seconds", 3600),
            )
        except ValueError as error:
            raise ConfigError(f"{source}: engines.{name}: {error}") from None
        engines[name] = EngineConfig(
            kind=kind, settings=EngineSettings(name=name, limits=limits, options=dict(reader.table),
                                               public_url=public_url, config_dir=base_dir)
        )
    return engines


def _policy(source: str, items: list[Any]) -> Policy:
    entries = []
    for i, item in enumerate(items):
        reader = _Reader(source, f"policy[{i}]", item)
        agent = reader.get("agent", str)
        engines = {}
        for engine, section in reader.get("engines", dict).items():
            sub = _Reader(source, f"policy[{i}].engines.{engine}", section)
            engines[engine] = EnginePolicy(
                scopes=sub.strings("scopes"),
                default_ttl_seconds=sub.positive("default_ttl_seconds", None),
                max_ttl_seconds=sub.positive("max_ttl_seconds", None),
            )
            sub.done()
        default_task_ttl = max((p.max_ttl_seconds or 3600 for p in engines.values()), default=3600)
        max_task_ttl = reader.positive("max_task_ttl_seconds", default_task_ttl)
        entries.append(AgentPolicy(agent=agent, engines=engines, max_task_ttl_seconds=max_task_ttl))
        reader.done()
    return Policy(entries=tuple(entries))


def _audit(source: str, table: dict[str, Any], base_dir: Path | None) -> AuditSettings:
    """``[audit] anchor = "PATH"`` (relative to the config's folder), ``anchor_seconds``."""
    reader = _Reader(source, "audit", table)
    anchor = reader.get("anchor", str, None)
    seconds = reader.positive("anchor_seconds", 60)
    reader.done()
    if anchor is not None and not anchor.strip():
        raise reader.error("anchor", "must be a file path")
    path = None if anchor is None else (base_dir / anchor if base_dir else Path(anchor))
    return AuditSettings(anchor=path, anchor_seconds=float(seconds))


def _console(source: str, table: dict[str, Any]) -> ConsoleSettings:
    reader = _Reader(source, "console", table)
    defaults = ConsoleSettings()
    settings = ConsoleSettings(
        enabled=reader.get("enabled", bool, defaults.enabled),
        idle_minutes=reader.positive("idle_minutes", defaults.idle_minutes),
        max_hours=reader.positive("max_hours", defaults.max_hours),
        sign_in_failures=reader.positive("sign_in_failures", defaults.sign_in_failures),
        sign_in_window_seconds=reader.positive("sign_in_window_seconds", defaults.sign_in_window_seconds),
    )
    reader.done()
    return settings


def _reaper(source: str, table: dict[str, Any]) -> ReaperSettings:
    reader = _Reader(source, "reaper", table)
    settings = ReaperSettings(
        enabled=reader.get("enabled", bool, True),
        max_sleep_seconds=reader.get("max_sleep_seconds", float, 0.2),
        coalesce_seconds=reader.get("coalesce_seconds", float, 0.05),
        batch_size=reader.positive("batch_size", 500),
        retry=RetryPolicy(
            base_seconds=reader.get("retry_base_seconds", float, 0.5),
            cap_seconds=reader.get("retry_cap_seconds", float, 60.0),
            max_attempts=reader.get("retry_max_attempts", int, 0),
            alert_after_attempts=reader.positive("retry_alert_after_attempts", 3),
            alert_every_attempts=reader.positive("retry_alert_every_attempts", 10),
        ),
    )
    reader.done()
    if settings.max_sleep_seconds <= 0:
        raise ConfigError(f"{source}: reaper.max_sleep_seconds must be positive")
    if not 0 <= settings.coalesce_seconds <= 0.5:
        raise ConfigError(f"{source}: reaper.coalesce_seconds must be from 0 to 0.5 (it adds to lateness)")
    if settings.retry.max_attempts < 0:
        raise ConfigError(f"{source}: reaper.retry_max_attempts must be 0 (never give up) or positive")
    return settings


def _server(source: str, table: dict[str, Any], base_dir: Path | None) -> ServerSettings:
    reader = _Reader(source, "server", table)

    def path_or_none(key: str) -> str | None:
        value = reader.get(key, str, "")
        if not value:
            return None
        return str((base_dir / value).resolve()) if base_dir is not None else value

    settings = ServerSettings(
        host=reader.get("host", str, "127.0.0.1"),
        port=reader.positive("port", 8470),
        tls_cert=path_or_none("tls_cert"),
        tls_key=path_or_none("tls_key"),
        workers=reader.positive("workers", 1),
        public_url=reader.get("public_url", str, "").rstrip("/"),
    )
    reader.done()
    if settings.public_url and not regex.fullmatch(r"https?://[^\s/?#]+(?:/[^\s?#]*)?", settings.public_url):
        raise reader.error("public_url", "must be an http:// or https:// URL without query or fragment")
    if (settings.tls_cert is None) != (settings.tls_key is None):
        raise ConfigError(f"{source}: server.tls_cert and server.tls_key must be given together")
    return settings


def _leaks(source: str, table: dict[str, Any]) -> LeakSettings:
    """``[leaks] on_leak = "lease" | "task" | "agent"``: what a leaked live credential costs (and the
    most a scanner may ask for); ``budget`` leases a principal's reports may revoke per
    ``budget_window_seconds`` (0: no cap)."""
    reader = _Reader(source, "leaks", table)
    defaults = LeakSettings()
    on_leak = reader.get("on_leak", str, defaults.default_scope.value)
    budget = reader.get("budget", int, defaults.budget)
    window = reader.positive("budget_window_seconds", defaults.budget_window_seconds)
    reader.done()
    if budget < 0:
        raise reader.error("budget", "must be 0 (no cap) or a positive number of leases")
    try:
        scope = LeakScope(on_leak)
    except ValueError:
        raise reader.error("on_leak", "must be one of lease, task, agent") from None
    return LeakSettings(default_scope=scope, budget=budget, budget_window_seconds=float(window))
