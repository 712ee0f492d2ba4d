"""``jitsec broker`` (init, serve, quarantine, release) and ``jitsec audit`` (verify, export).

The web stack (FastAPI, pydantic models, uvicorn: ~0.3 s to import) comes in with ``broker.server``,
``broker.runtime`` and ``broker.bootstrap``; only the commands that need it import them, so ``--help``
and ``jitsec audit`` answer at once.
"""

from __future__ import annotations

import json
import sys
from contextlib import closing
from typing import TextIO

import click

from jitsec.broker.audit import iter_records, record_to_dict
from jitsec.broker.audit import verify as check_chain
from jitsec.broker.config import BrokerConfig, load_config
from jitsec.broker.errors import BrokerError, ConfigError
from jitsec.broker.store.base import Store
from jitsec.broker.store.registry import open_store


class CommandError(click.ClickException):
    """Bad input or a broker that cannot do what was asked: exit 2 (1 means "found something":
    a tampered audit chain)."""

    exit_code = 2


CONFIG = click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="the broker's TOML configuration",
)


def _load(config_path: str) -> BrokerConfig:
    try:
        return load_config(config_path)
    except ConfigError as error:
        raise CommandError(str(error)) from None


@click.group("broker")
def broker_group() -> None:
    """The just-in-time secrets broker: per-task, scoped, short-lived credentials for agents."""


@broker_group.command("init")
@CONFIG
@click.option("--store", default=None, help="store URL (default: sqlite file next to the config)")
@click.option("--json", "as_json", is_flag=True, help="print the keys as JSON")
@click.option("--force", is_flag=True, help="overwrite an existing config (its keys stop working)")
@click.option("--postgres", "postgres_dsn", default=None, metavar="DSN",
              help="configure the PostgreSQL engine with this admin DSN (docs/postgres.md)")
def init(config_path: str, store: str | None, as_json: bool, force: bool, postgres_dsn: str | None) -> None:
    """Write a config with fresh principal keys (printed ONCE, stored only as hashes).

    \b
    Examples:
      jitsec broker init --config broker.toml              SQLite store beside the config
      jitsec broker init --config broker.toml --json       keys as JSON, for a secret manager
      jitsec broker init --config broker.toml --postgres postgresql://admin@db/app
    \b
    Exit status: 0 written, 2 refused (the file exists without --force, a bad store URL).
    """
    try:
        from jitsec.broker.bootstrap import init_config  # noqa: PLC0415 - the web stack, on use

        done = init_config(config_path, store=store, force=force, postgres=postgres_dsn)
    except (FileExistsError, ValueError) as error:
        raise CommandError(str(error)) from None
    if as_json:
        click.echo(done.as_json())
        return
    click.echo(f"wrote {done.path} (store {done.store})")
    click.echo("principal keys, shown once: keep them in your secret manager, not in files or logs")
    for role, key in done.keys.items():
        click.echo(f"  {role:<13} {key}")
    click.echo(f"next: jitsec broker serve --config {done.path}")


@broker_group.command("serve")
@CONFIG
@click.option("--host", default=None, help="listen address (default: [server].host)")
@click.option("--port", type=int, default=None, help="listen port (default: [server].port)")
@click.option("--workers", type=int, default=None, help="worker processes (default: [server].workers)")
@click.option("--log-level", default="info", type=click.Choice(["debug", "info", "warning", "error"]))
def serve(config_path: str, host: str | None, port: int | None, workers: int | None, log_level: str) -> None:
    """Run the HTTP API (HTTPS when [server] names a certificate); the reaper runs inside.

    \b
    Examples:
      jitsec broker serve --config broker.toml
      jitsec broker serve --config broker.toml --host 0.0.0.0 --port 8470 --workers 4
    \b
    Exit status: 0 after SIGTERM or Ctrl-C, 2 for a bad config; needs `pip install 'jitsec[broker]'`.
    """
    from jitsec.broker.server import serve as run_server  # noqa: PLC0415 - the web stack, on use

    run_server(_load(config_path), config_path, host=host, port=port, workers=workers, log_level=log_level)


@broker_group.command("quarantine")
@CONFIG
@click.argument("agent")
@click.option("--reason", default="", help="recorded in the audit")
@click.option("--release", is_flag=True, help="lift the quarantine instead")
def quarantine(config_path: str, agent: str, reason: str, release: bool) -> None:
    """Revoke everything AGENT holds and refuse it new tasks (or --release it).

    \b
    Examples:
      jitsec broker quarantine --config broker.toml agent-7 --reason "prompt injection seen"
      jitsec broker quarantine --config broker.toml agent-7 --release
    \b
    Exit status: 0 done, 2 for a bad config or an error from the store.
    """
    from jitsec.broker.runtime import build_broker  # noqa: PLC0415 - the web stack, on use

    broker = build_broker(_load(config_path))
    try:
        if release:
            broker.service.release_agent(agent, "cli-admin")
            click.echo(f"released {agent}")
            return
        done = broker.service.quarantine_agent(agent, "cli-admin", reason)
        results = [r for completion in done for r in completion.results]
        click.echo(
            f"quarantined {agent}: {sum(1 for d in done if d.task_id)} task(s) ended, "
            f"{len(results)} lease(s) revoked or in revocation"
        )
    except BrokerError as error:
        raise CommandError(str(error)) from None
    finally:
        broker.close()


@click.group("audit")
def audit_group() -> None:
    """The broker's tamper-evident audit chain."""


def _open_store(config_path: str) -> tuple[BrokerConfig, Store]:
    config = _load(config_path)
    store = open_store(config.store_url, config.audit_key)
    store.migrate()
    return config, store


@audit_group.command("verify")
@CONFIG
def verify(config_path: str) -> None:
    """Check the hash chain; name every record edited, deleted, inserted or reordered.

    \b
    Example:
      jitsec audit verify --config broker.toml
    \b
    Exit status: 0 intact, 1 tampered (each problem on stderr), 2 for a bad config.
    """
    config, store = _open_store(config_path)
    with closing(store):
        result = check_chain(config.audit_key, iter_records(store))
    if result.ok:
        click.echo(f"audit chain intact: {result.records} records, head {result.head_hash[:16]}")
        return
    for problem in result.problems:
        click.echo(f"TAMPERED: {problem.describe()}", err=True)
    raise SystemExit(1)


@audit_group.command("export")
@CONFIG
@click.option("--output", "-o", type=click.File("w"), default="-", help="JSON lines file (default stdout)")
@click.option("--after-seq", type=int, default=0, help="only records after this sequence number")
def export(config_path: str, output: TextIO, after_seq: int) -> None:
    """Write the audit records as JSON lines (with their chain hashes).

    \b
    Examples:
      jitsec audit export --config broker.toml -o audit.jsonl
      jitsec audit export --config broker.toml --after-seq 5000 | jq .kind
    \b
    Exit status: 0 written, 2 for a bad config.
    """
    _, store = _open_store(config_path)
    count = 0
    with closing(store):
        while True:
            batch = store.audit_records(after_seq=after_seq, limit=5000)
            for record in batch:
                output.write(json.dumps(record_to_dict(record), separators=(",", ":")) + "\n")
            count += len(batch)
            if len(batch) < 5000:
                break
            after_seq = batch[-1].seq
    click.echo(f"exported {count} records", err=True)
    sys.stdout.flush()
