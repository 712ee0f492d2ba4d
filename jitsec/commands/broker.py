"""``jitsec broker`` (init, serve, quarantine, release) and ``jitsec audit`` (verify, export).

The web stack (FastAPI, pydantic models, uvicorn: ~0.3 s to import) comes in with ``broker.server``,
``broker.runtime`` and ``broker.bootstrap``; only the commands that need it import them, so ``--help``
and ``jitsec audit`` answer at once.
"""

from __future__ import annotations

import json
import os
import sys
from contextlib import closing
from pathlib import Path
from typing import TextIO
from urllib.parse import urlsplit

import click

from jitsec.broker.audit import iter_records, record_to_dict
from jitsec.broker.audit import verify as check_chain
from jitsec.broker.config import BrokerConfig, load_config
from jitsec.broker.custody.base import Custody, NoKey
from jitsec.broker.custody.opening import open_custody
from jitsec.broker.custody.settings import PIN_ENV, TokenSettings
from jitsec.broker.errors import BrokerError, ConfigError
from jitsec.broker.model import PRINCIPAL_ROLES, Role
from jitsec.broker.store.base import Store
from jitsec.broker.store.registry import open_store

ADMIN_DSN_ENV = "JITSEC_POSTGRES_ADMIN_DSN"


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
@click.option("--postgres", "postgres_dsn", default=None, metavar="DSN", envvar=ADMIN_DSN_ENV,
              help=f"configure the PostgreSQL engine with this admin DSN, or ${ADMIN_DSN_ENV} (better: "
                   "a password in an argument is visible in ps and shell history); docs/postgres.md")
@click.option("--pkcs11-module", default=None, metavar="PATH",
              help="PKCS#11 library of the token that will hold the master keys (e.g. SoftHSM2's "
                   "libsofthsm2.so); with --pkcs11-token; the PIN only from $JITSEC_PKCS11_PIN")
@click.option("--pkcs11-token", default=None, metavar="LABEL", help="label of that token")
def init(  # noqa: PLR0917 - one parameter per option, as click passes them
    config_path: str, store: str | None, as_json: bool, force: bool, postgres_dsn: str | None,
    pkcs11_module: str | None, pkcs11_token: str | None,
) -> None:
    """Write a config with fresh principal keys (printed ONCE, stored only as hashes).

    With --pkcs11-module and --pkcs11-token the audit, anchor and key-encryption keys are created in
    that token (non-extractable) and the config holds no key; the PostgreSQL admin password is sealed
    by the token. Without a token it goes to a 0600 file beside the config, never into it.
    Beside the config it also creates the SSH engine's CA key (ssh-ca, 0600) and its public line
    (ssh-ca.pub, for sshd's TrustedUserCAKeys), keeping them if they exist; docs/engine-ssh.md.

    \b
    Examples:
      jitsec broker init --config broker.toml              SQLite store beside the config
      jitsec broker init --config broker.toml --json       keys as JSON, for a secret manager
      JITSEC_POSTGRES_ADMIN_DSN=postgresql://admin:…@db/app jitsec broker init --config broker.toml
      JITSEC_PKCS11_PIN=… jitsec broker init --config broker.toml \\
          --pkcs11-module /usr/lib/softhsm/libsofthsm2.so --pkcs11-token jitsec
    \b
    Exit status: 0 written, 2 refused (the file exists without --force, a bad store URL, a token that
    is missing, refuses the PIN or already holds keys with these labels).
    """
    source = click.get_current_context().get_parameter_source("postgres_dsn")
    if postgres_dsn and source is click.core.ParameterSource.COMMANDLINE and urlsplit(postgres_dsn).password:
        click.echo(f"jitsec: warning: the --postgres DSN's password is visible to every user in ps and in "
                   f"your shell history; pass it in ${ADMIN_DSN_ENV} instead", err=True)
    try:
        from jitsec.broker.bootstrap import init_config  # noqa: PLC0415 - the web stack, on use

        done = init_config(config_path, store=store, force=force, postgres=postgres_dsn,
                           token=_token_settings(pkcs11_module, pkcs11_token),
                           pin=os.environ.get(PIN_ENV, ""))
    except (FileExistsError, ValueError, ConfigError) as error:
        raise CommandError(str(error)) from None
    if as_json:
        click.echo(done.as_json())
        return
    click.echo(f"wrote {done.path} (store {done.store})")
    click.echo("principal keys, shown once: keep them in your secret manager, not in files or logs")
    for role, key in done.keys.items():
        click.echo(f"  {role:<13} {key}")
    click.echo(f"next: jitsec broker serve --config {done.path}")


def _token_settings(module: str | None, token: str | None) -> TokenSettings | None:
    if module is None and token is None:
        return None
    if not module or not token:
        raise CommandError("--pkcs11-module and --pkcs11-token go together")
    if not Path(module).is_file():
        raise CommandError(f"--pkcs11-module {module}: no such file")
    if not os.environ.get(PIN_ENV):
        raise CommandError(f"the token's PIN is read from ${PIN_ENV} only (never from argv); export it")
    return TokenSettings(module=str(Path(module).absolute()), token=token)


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
    With [keys] custody = "pkcs11" the PIN comes from $JITSEC_PKCS11_PIN; a missing token or a wrong
    PIN exits 2 with a message naming the token.
    \b
    Exit status: 0 after SIGTERM or Ctrl-C, 2 for a bad config or an unusable key token; needs
    `pip install 'jitsec[broker]'` (and 'jitsec[hsm]' for a token).
    """
    from jitsec.broker.server import serve as run_server  # noqa: PLC0415 - the web stack, on use

    try:
        run_server(_load(config_path), config_path, host=host, port=port, workers=workers,
                   log_level=log_level)
    except ConfigError as error:  # a token that is missing or refuses the PIN, an unreadable secret
        raise CommandError(str(error)) from None


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


@broker_group.group("principals")
def principals_group() -> None:
    """Who may call the broker: one key per orchestrator, scanner, daemon and hook.

    Keys are printed once and stored only as hashes in the config; a running broker reads the
    principals again when the file changes (within a second), so add and revoke need no restart.
    """


@principals_group.command("add")
@CONFIG
@click.argument("name")
@click.option("--role", type=click.Choice([r.value for r in PRINCIPAL_ROLES]), required=True,
              help="what the key may do (docs/broker.md, the security model)")
@click.option("--json", "as_json", is_flag=True, help="print name, role and key as JSON")
def principals_add(config_path: str, name: str, role: str, as_json: bool) -> None:
    """Add principal NAME with a fresh key, printed ONCE.

    \b
    Examples:
      jitsec broker principals add --config broker.toml hooks-alice --role scanner
      jitsec broker principals add --config broker.toml logs-daemon-eu1 --role scanner --json
    \b
    Exit status: 0 added, 2 refused (the name exists, a bad name, a config that does not load).
    """
    from jitsec.broker.principals_file import PrincipalError, add_principal  # noqa: PLC0415

    try:
        key = add_principal(Path(config_path), name, Role(role))
    except (PrincipalError, ConfigError) as error:
        raise CommandError(str(error)) from None
    if as_json:
        click.echo(json.dumps({"name": name, "role": role, "key": key}))
        return
    click.echo(f"added {name} ({role}); its key, shown once (keep it in a secret manager):")
    click.echo(f"  {key}")


@principals_group.command("list")
@CONFIG
@click.option("--json", "as_json", is_flag=True, help="one JSON document")
def principals_list(config_path: str, as_json: bool) -> None:
    """List the principals: name, role and the start of their key's hash (never a key).

    \b
    Example:
      jitsec broker principals list --config broker.toml
    \b
    Exit status: 0 listed, 2 a config that does not load.
    """
    rows = [{"name": p.name, "role": p.role.value, "key_sha256": p.key_sha256[:12]}
            for p in _load(config_path).principals]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        click.echo(f"{row['name']:<32} {row['role']:<13} {row['key_sha256']}…")


@principals_group.command("revoke")
@CONFIG
@click.argument("name")
def principals_revoke(config_path: str, name: str) -> None:
    """Remove principal NAME: its key stops working (a running broker within a second).

    \b
    Example:
      jitsec broker principals revoke --config broker.toml hooks-alice
    \b
    Exit status: 0 revoked, 2 refused (no such principal, or the last admin).
    """
    from jitsec.broker.principals_file import PrincipalError, revoke_principal  # noqa: PLC0415

    try:
        gone = revoke_principal(Path(config_path), name)
    except (PrincipalError, ConfigError) as error:
        raise CommandError(str(error)) from None
    click.echo(f"revoked {gone.name} ({gone.role.value})")


@click.group("audit")
def audit_group() -> None:
    """The broker's tamper-evident audit chain."""


def _open_store(config_path: str) -> tuple[BrokerConfig, Custody, Store]:
    """The config, its key custody (the token logged in when it names one) and its migrated store."""
    config = _load(config_path)
    try:
        custody = open_custody(config.keys, config.audit_key)
    except ConfigError as error:
        raise CommandError(str(error)) from None
    store = open_store(config.store_url, custody.audit)
    store.migrate()
    return config, custody, store


@audit_group.command("verify")
@CONFIG
@click.option("--anchor", "anchor_path", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              default=None, help="checkpoints of the chain's head (default: the config's [audit] anchor)")
def verify(config_path: str, anchor_path: Path | None) -> None:
    """Check the hash chain; name every record edited, deleted, inserted or reordered, every
    checkpointed record the chain no longer holds (a cut tail, a deleted chain: needs the anchor
    file), and every lease the chain says is dead that the store holds as live.

    \b
    Examples:
      jitsec audit verify --config broker.toml
      jitsec audit verify --config broker.toml --anchor /mnt/worm/jitsec-anchor.jsonl
    \b
    Exit status: 0 intact, 1 tampered (each problem on stderr), 2 for a bad config.
    """
    from jitsec.broker.audit_anchor import read_checkpoints, verify_anchor, verify_leases  # noqa: PLC0415

    config, custody, store = _open_store(config_path)
    anchor = anchor_path or config.audit.anchor
    held = 0
    with closing(custody), closing(store):
        records = list(iter_records(store))
        result = check_chain(custody.audit, records)
        problems = [problem.describe() for problem in result.problems]
        problems += verify_leases(store, records)
        if anchor is not None:
            try:
                checkpoints, unreadable = read_checkpoints(anchor)
            except OSError as error:
                raise CommandError(f"cannot read the anchor {anchor}: {error.strerror or error}") from None
            problems += unreadable + verify_anchor(custody.anchor, records, checkpoints)
            held = len(checkpoints)
    if not problems:
        anchored = f", {held} checkpoints hold" if anchor is not None else ", no anchor checked"
        click.echo(f"audit chain intact: {result.records} records, head {result.head_hash[:16]}{anchored}")
        return
    for problem in problems:
        click.echo(f"TAMPERED: {problem}", err=True)
    raise SystemExit(1)


@audit_group.command("export")
@CONFIG
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="JSON lines file, created mode 0600 (default stdout)")
@click.option("--after-seq", type=int, default=0, help="only records after this sequence number")
def export(config_path: str, output: Path | None, after_seq: int) -> None:
    """Write the audit records as JSON lines (with their chain hashes).

    \b
    Examples:
      jitsec audit export --config broker.toml -o audit.jsonl
      jitsec audit export --config broker.toml --after-seq 5000 | jq .kind
    \b
    Exit status: 0 written, 2 for a bad config or an output that cannot be written.
    """
    store = open_store(_load(config_path).store_url, NoKey())  # reads records as stored: no key, no PIN
    store.migrate()
    try:  # agents, tasks and locations are in it: readable by its owner only
        target: TextIO = (os.fdopen(os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w",
                                    encoding="utf-8") if output is not None else sys.stdout)
    except OSError as error:
        store.close()
        raise CommandError(f"cannot write {output}: {error.strerror or error}") from None
    count = 0
    with closing(store):
        while True:
            batch = store.audit_records(after_seq=after_seq, limit=5000)
            for record in batch:
                target.write(json.dumps(record_to_dict(record), separators=(",", ":")) + "\n")
            count += len(batch)
            if len(batch) < 5000:
                break
            after_seq = batch[-1].seq
    if output is not None:
        target.close()
        os.chmod(output, 0o600)  # an existing file keeps its mode through O_TRUNC
    click.echo(f"exported {count} records", err=True)
    sys.stdout.flush()


from jitsec.commands.broker_jwt import jwt_group  # noqa: E402 - a subgroup in its own module

broker_group.add_command(jwt_group)
