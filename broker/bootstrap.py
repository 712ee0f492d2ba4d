"""``jitsec broker init``: a fresh configuration with generated principal keys and an example policy.

The keys are returned to the caller to print once; the file keeps only their SHA-256 hashes.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from jitsec.broker.engines.postgres_bootstrap import engine_section, policy_section
from jitsec.broker.engines.ssh_ca import FileEd25519Signer
from jitsec.broker.keys import key_hash, new_audit_key, new_principal_key
from jitsec.broker.model import PRINCIPAL_ROLES

TEMPLATE = """\
# jitsec broker configuration (written by `jitsec broker init`). Every field: docs/broker.md.
# Principals' keys were printed once when this file was written; only their SHA-256 is kept here.

[broker]
store = {store}                      # sqlite:///abs/path.db (embedded) or postgresql://...
audit_key = "{audit_key}"  # HMAC key of the audit chain: keep this file private (0600)
grant_ttl_seconds = 300              # how long a task grant may wait to be redeemed
on_grant_replay = "end-task"         # a redeemed grant presented again: "end-task" (revoke all) or "refuse"
max_request_bytes = 65536            # larger request bodies get 413

[server]
host = "127.0.0.1"
port = 8470
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

[engines.token]                      # opaque jit_ tokens, checked with POST /v1/introspect
default_ttl_seconds = 300
max_ttl_seconds = 3600

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
                postgres: str | None = None) -> Initialised:
    """Write a new config at ``path`` (mode 0600); refuses to overwrite unless ``force``. With
    ``postgres`` (an admin DSN) the PostgreSQL engine is configured too (ValueError if malformed)."""
    path = Path(path)
    postgres_engine = engine_section(postgres) + "\n" if postgres else ""
    postgres_policy = policy_section(postgres) + "\n" if postgres else ""
    if path.exists() and not force:
        raise FileExistsError(f"{path} exists; pass --force to replace it (its keys stop working)")
    store_url = store or f"sqlite://{(path.parent / 'broker.db').resolve()}"
    keys = {role.value: new_principal_key() for role in PRINCIPAL_ROLES}
    principals = "\n".join(
        f'[[principals]]\nname = "{role}"\nrole = "{role}"\nkey_sha256 = "{key_hash(key)}"\n'
        for role, key in keys.items()
    )
    state = path.parent.resolve()
    text = TEMPLATE.format(store=json.dumps(store_url), audit_key=new_audit_key(), principals=principals,
                           postgres_engine=postgres_engine, postgres_policy=postgres_policy,
                           ssh_ca_key=json.dumps(str(state / SSH_CA_FILE)),
                           ssh_krl=json.dumps(str(state / SSH_KRL_FILE)))
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, 0o600)
    FileEd25519Signer(state / SSH_CA_FILE)  # the SSH CA's key (and its .pub), kept if it exists already
    return Initialised(path=path, store=store_url, keys=keys)
