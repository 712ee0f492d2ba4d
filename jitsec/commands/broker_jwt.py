"""``jitsec broker jwt``: the jwt engine's signing keys (rotate, list). A running broker picks up a
rotation within a second; the old key stays in ``/.well-known/jwks.json`` until its last token expires."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

from jitsec.broker.config import BrokerConfig, EngineConfig
from jitsec.broker.engines.base import EngineSettings
from jitsec.broker.errors import ConfigError

if TYPE_CHECKING:
    from jitsec.broker.engines.jwt_keys import KeyRing

JWT_KIND = "jwt"
SKEW_SECONDS = 60  # a retired key stays published this much past its last token's expiry


class CommandError(click.ClickException):
    exit_code = 2


def _engine(config_path: str, name: str | None) -> tuple[BrokerConfig, EngineConfig]:
    from jitsec.broker.config import load_config  # noqa: PLC0415

    try:
        config: BrokerConfig = load_config(config_path)
    except ConfigError as error:
        raise CommandError(str(error)) from None
    sections = {n: e for n, e in config.engines.items() if e.kind == JWT_KIND}
    if name is not None:
        if name not in sections:
            raise CommandError(f"{config_path}: no [engines.{name}] section of kind jwt "
                               f"(jwt engines: {', '.join(sorted(sections)) or 'none'})")
        return config, sections[name]
    if len(sections) != 1:
        raise CommandError(f"{config_path}: {len(sections)} jwt engines configured "
                           f"({', '.join(sorted(sections)) or 'none'}); name one with --engine")
    return config, next(iter(sections.values()))


@contextmanager
def _ring(config_path: str, name: str | None) -> Iterator[tuple[EngineSettings, KeyRing]]:
    """The engine's settings and key ring; the broker's key custody is open meanwhile when the keys
    are in its PKCS#11 token (the PIN from the environment, as for the broker)."""
    from jitsec.broker.custody.opening import open_custody  # noqa: PLC0415 - a token, on use
    from jitsec.broker.custody.signers import CustodyKeys  # noqa: PLC0415 - cryptography, on use
    from jitsec.broker.engines.jwt import key_ring  # noqa: PLC0415

    config, engine = _engine(config_path, name)
    settings = engine.settings
    try:
        custody = open_custody(config.keys, config.audit_key)
        try:
            settings = replace(settings, signing_keys=CustodyKeys(custody, settings.config_dir))
            yield settings, key_ring(settings)
        finally:
            custody.close()
    except ConfigError as error:
        raise CommandError(str(error)) from None


def _when(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


ENGINE = click.option("--engine", "engine_name", default=None,
                      help="the [engines.NAME] section (default: the one jwt engine)")
CONFIG = click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False),
                      help="the broker's TOML configuration")


@click.group("jwt")
def jwt_group() -> None:
    """The jwt engine's signing keys: rotate them, list what the JWKS publishes."""


@jwt_group.command("rotate-key")
@CONFIG
@ENGINE
@click.option("--json", "as_json", is_flag=True, help="print the new and the retired key ids as JSON")
def rotate_key(config_path: str, engine_name: str | None, as_json: bool) -> None:
    """Make a new current signing key; the old one stays published until its last token expires.

    \b
    Examples:
      jitsec broker jwt rotate-key --config broker.toml
      jitsec broker jwt rotate-key --config broker.toml --engine jwt-long --json
    \b
    A running broker signs with the new key within a second (no restart). Resource servers that
    cache the JWKS fetch it again when they meet the new key id. With keys = "pkcs11:PREFIX" the new
    key is made in the broker's PKCS#11 token (export JITSEC_PKCS11_PIN first) and the old pair is
    deleted from it.
    \b
    Exit status: 0 rotated, 2 refused (no jwt engine, a config or key ring that does not load).
    """
    with _ring(config_path, engine_name) as (settings, ring):
        state, retired = ring.rotate(time.time(), settings.limits.max_ttl_seconds + SKEW_SECONDS)
    old = retired.jwk["kid"]
    if as_json:
        click.echo(json.dumps({"engine": settings.name, "current": state.signer.key_id, "retired": old,
                               "retired_published_until": retired.published_until}))
        return
    click.echo(f"engine {settings.name}: signing with new key {state.signer.key_id}")
    click.echo(f"  retired key {old} stays in the JWKS until {_when(retired.published_until)}")


@jwt_group.command("keys")
@CONFIG
@ENGINE
@click.option("--json", "as_json", is_flag=True, help="print the JWKS as served")
def list_keys(config_path: str, engine_name: str | None, as_json: bool) -> None:
    """List the keys /.well-known/jwks.json publishes now (public halves only).

    \b
    Example:
      jitsec broker jwt keys --config broker.toml
    \b
    Exit status: 0 listed, 2 refused (no jwt engine, a config or key ring that does not load).
    """
    now = time.time()
    with _ring(config_path, engine_name) as (_, ring):
        state = ring.open(now)
    if as_json:
        click.echo(json.dumps(state.jwks(now), indent=2))
        return
    click.echo(f"{state.signer.key_id}  current ({state.signer.algorithm})")
    for key in state.retired:
        if key.published_until > now:
            click.echo(f"{key.jwk['kid']}  retired, published until {_when(key.published_until)}")
