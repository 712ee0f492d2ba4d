"""``jitsec broker init``: a fresh configuration with generated principal keys and an example policy.

The keys are returned to the caller to print once; the file keeps only their SHA-256 hashes.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from jitsec.broker.custody.base import Custody, Sealer
from jitsec.broker.custody.engine_secrets import seal_context, write_private_secret
from jitsec.broker.custody.settings import TokenSettings
from jitsec.broker.engines.postgres_bootstrap import engine_section, policy_section, without_password
from jitsec.broker.engines.ssh_ca import FileEd25519Signer
from jitsec.broker.keys import key_hash, new_audit_key, new_principal_key
from jitsec.broker.model import PRINCIPAL_ROLES

TEMPLATE = """\
# jitsec broker configuration (written by `jitsec broker init`). Every field: docs/broker.md.
# Principals' keys were printed once when this file was written; only their SHA-256 is kept here.

[broker]
store = {store}                      # sqlite:///abs/path.db (embedded) or postgresql://...
{audit_key}
grant_ttl_seconds = 300              # how long a task grant may wait to be redeemed
on_grant_replay = "end-task"         # a redeemed grant presented again: "end-task" (revoke all) or "refuse"
max_request_bytes = 65536            # larger request bodies get 413

[server]
host = "127.0.0.1"
port = 8470
# public_url = "https://broker.example.com"  # how clients reach it (a JWT's issuer); default: host and port
# tls_cert = "cert.pem"              # serve HTTPS when both are set (paths relative to this file)
# tls_key = "key.pem"
workers = 1

[reaper]
enabled = true
max_sleep_seconds = 0.2              # the longest the reaper sleeps between passes
batch_size = 500
retry_base_seconds = 0.5             # revocation retries: exponential backoff with jitter...
retry_cap_seconds = 60.0             # ...capped at this delay...
retry_max_attempts = 0               # 0: never give up while it may still work; N: fail + alert
retry_alert_after_attempts = 3      # alert "still revoking" after this many failed attempts...
retry_alert_every_attempts = 10     # ...and again every this many

{keys}[engines.token]                      # opaque jit_ tokens, checked with POST /v1/introspect
default_ttl_seconds = 300
max_ttl_seconds = 3600

[engines.jwt]                        # OAuth access tokens (RFC 9068 JWTs), verified offline with the JWKS
{jwt_keys}default_ttl_seconds = 300
max_ttl_seconds = 900
[engines.ssh]                        # OpenSSH user certificates for the agent's own key (docs/engine-ssh.md)
ca_key = {ssh_ca_key}  # the CA's private key (0600); <ca_key>.pub is sshd's TrustedUserCAKeys
krl_file = {ssh_krl}  # revoked certificates: sshd's RevokedKeys (also GET /v1/ssh/krl)
default_ttl_seconds = 300
max_ttl_seconds = 3600               # valid_before = the lease's expiry: holds even with the broker down

{postgres_engine}{principals}
# Policy: first entry whose `agent` glob matches wins; an agent no entry matches gets nothing.
# Scopes are globs too ("reports:*"). TTLs never exceed the engine's max_ttl_seconds.
[[policy]]
agent = "demo-agent"
max_task_ttl_seconds = 900           # a task of demo-agent lasts at most 15 minutes

[policy.engines.token]
scopes = ["reports:read", "reports:write"]
default_ttl_seconds = 300
max_ttl_seconds = 900

[policy.engines.jwt]                 # aud = "reports" (the scopes' resource), scope = "reports:read"
scopes = ["reports:read"]
default_ttl_seconds = 300
max_ttl_seconds = 900
# [policy.engines.ssh]               # log in as "deploy" on servers that trust the CA, from 10.0.0.0/8 only
# scopes = ["ssh:principal:deploy", "ssh:source:10.0.0.0/8"]

{postgres_policy}# [[policy]]
# agent = "billing-*"
# max_task_ttl_seconds = 1800
# [policy.engines.postgres]
# scopes = ["billing:read"]
# max_ttl_seconds = 600
"""

SSH_CA_FILE = "ssh-ca"
SSH_KRL_FILE = "ssh-revoked.krl"


@dataclass(frozen=True, slots=True)
class Initialised:
    path: Path
    store: str
    keys: dict[str, str] = field(repr=False)  # role -> key, to print once

    def as_json(self) -> str:
        return json.dumps({"config": str(self.path), "store": self.store, "keys": self.keys}, indent=2)


def init_config(path: str | Path, *, store: str | None = None, force: bool = False,
                postgres: str | None = None, token: TokenSettings | None = None,
                pin: str = "") -> Initialised:
    """Write a new config at ``path`` (mode 0600); refuses to overwrite unless ``force``. With
    ``postgres`` (an admin DSN) the PostgreSQL engine is configured too (ValueError if malformed); its
    password is sealed by the token's key-encryption key, or else written to a 0600 file beside the
    config, never into the config. With ``token`` the master keys are created in that PKCS#11 token
    (``CustodyError`` if it refuses) and the config names them only."""
    path = Path(path)
    if postgres:
        without_password(postgres)  # a malformed DSN is refused before anything is created
    if path.exists() and not force:
        raise FileExistsError(f"{path} exists; pass --force to replace it (its keys stop working)")
    custody: Custody | None = None
    if token is not None:
        from jitsec.broker.custody.pkcs11_token import create_token_keys  # noqa: PLC0415 - optional extra

        custody = create_token_keys(token, pin)
    try:
        sealer = custody.sealer if custody is not None else None
        postgres_engine = _postgres_engine(path, postgres, sealer) if postgres else ""
    finally:
        if custody is not None:
            custody.close()
    postgres_policy = policy_section(postgres) + "\n" if postgres else ""
    store_url = store or f"sqlite://{(path.parent / 'broker.db').resolve()}"
    keys = {role.value: new_principal_key() for role in PRINCIPAL_ROLES}
    principals = "\n".join(
        f'[[principals]]\nname = "{role}"\nrole = "{role}"\nkey_sha256 = "{key_hash(key)}"\n'
        for role, key in keys.items()
    )
    state = path.parent.resolve()
    text = TEMPLATE.format(store=json.dumps(store_url), audit_key=_audit_key_line(token),
                           keys=_keys_section(token), principals=principals,
                           postgres_engine=postgres_engine, postgres_policy=postgres_policy,
                           ssh_ca_key=json.dumps(str(state / SSH_CA_FILE)),
                           ssh_krl=json.dumps(str(state / SSH_KRL_FILE)), jwt_keys=_jwt_keys(token))
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, 0o600)
    FileEd25519Signer(state / SSH_CA_FILE)  # the SSH CA's key (and its .pub), kept if it exists already
    return Initialised(path=path, store=store_url, keys=keys)


def _audit_key_line(token: TokenSettings | None) -> str:
    if token is None:
        return f'audit_key = "{new_audit_key()}"  # HMAC key of the audit chain: keep this file 0600'
    return "# audit_key: none here; the audit and anchor keys are in the PKCS#11 token named in [keys]"


JWT_FILE_KEYS = 'keys = "jwt-keys"                    # signing keys (made on first start)\n'
JWT_TOKEN_KEYS = ('keys = "pkcs11:jwt"                  # signing keys in the token, labelled jwt-<8 hex>\n'
                  'ring = "jwt-keys"                    # ring.json: the current one (made on first start)\n')


def _jwt_keys(token: TokenSettings | None) -> str:
    """The jwt engine's key lines: a key folder, or with a token, keys made in it. Either way
    ``jitsec broker jwt rotate-key`` rotates them."""
    return JWT_FILE_KEYS if token is None else JWT_TOKEN_KEYS


def _keys_section(token: TokenSettings | None) -> str:
    if token is None:
        return ""
    return f"""[keys]                               # master keys in a PKCS#11 token; PIN: $JITSEC_PKCS11_PIN
custody = "pkcs11"
module = {json.dumps(token.module)}
token = {json.dumps(token.token)}
audit_key_label = {json.dumps(token.audit_key_label)}
anchor_key_label = {json.dumps(token.anchor_key_label)}
kek_label = {json.dumps(token.kek_label)}

"""


def _postgres_engine(path: Path, dsn: str, sealer: Sealer | None) -> str:
    """The engine section; the DSN's password sealed (token) or in ``<config>.postgres-password``."""
    bare, password = without_password(dsn)
    if password is None:
        line = "# no password in the DSN: ~/.pgpass, or admin_password_from_file / admin_password_from_env\n"
    elif sealer is not None:
        blob = sealer.seal(password, seal_context("postgres", "admin_password"))
        line = f"admin_password_sealed = {json.dumps(blob)}  # opened by the token's key-encryption key\n"
    else:
        secret_path = path.parent / f"{path.stem}.postgres-password"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_private_secret(secret_path, password)
        line = f"admin_password_from_file = {json.dumps(secret_path.name)}  # mode 0600, beside this file\n"
    return engine_section(bare, line) + "\n"
