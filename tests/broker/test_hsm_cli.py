"""A broker whose master keys are in a SoftHSM2 token, as an operator runs it: `jitsec broker init
--pkcs11-module --pkcs11-token` (PIN from the environment only), `serve` refusing a wrong PIN or a
missing token with exit 2, then issuing and revoking (a PostgreSQL credential too, its admin password
sealed by the token) with no key material in its files, and `jitsec audit verify` through the token."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tomllib
import uuid
from pathlib import Path

import httpx
import jwt
import psycopg
import pytest
from jitsec.broker.client import BrokerClient
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from jitsec.testing import wait_until

JITSEC = os.path.join(os.path.dirname(sys.executable), "jitsec")


def jitsec(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([JITSEC, *args], check=False, capture_output=True, text=True, env=env,
                          timeout=timeout)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def token(softhsm) -> tuple[str, dict[str, str]]:
    """A token of this test (made before any process loads the library) and the environment to use it."""
    label = softhsm.new_token(f"cli-{uuid.uuid4().hex[:8]}")
    env = {**os.environ, "SOFTHSM2_CONF": str(softhsm.conf), "JITSEC_PKCS11_PIN": softhsm.pin}
    env.pop("JITSEC_POSTGRES_ADMIN_DSN", None)
    return label, env


def test_init_refuses_without_the_pin_in_the_environment(softhsm, token, tmp_path: Path) -> None:
    label, env = token
    config = tmp_path / "broker.toml"
    without_pin = {k: v for k, v in env.items() if k != "JITSEC_PKCS11_PIN"}
    result = jitsec("broker", "init", "--config", str(config), "--pkcs11-module", softhsm.module,
                    "--pkcs11-token", label, env=without_pin)
    assert result.returncode == 2 and "JITSEC_PKCS11_PIN" in result.stderr and not config.exists()
    wrong = jitsec("broker", "init", "--config", str(config), "--pkcs11-module", softhsm.module,
                   "--pkcs11-token", label, env={**env, "JITSEC_PKCS11_PIN": "0000"})
    assert wrong.returncode == 2 and "wrong PIN" in wrong.stderr and label in wrong.stderr


@pytest.mark.postgres
def test_a_broker_on_a_token_serves_with_no_key_material_in_its_files(
    softhsm, token, tmp_path: Path, fresh_database: str
) -> None:
    label, env = token
    role_prefix = f"jh{uuid.uuid4().hex[:6]}_"  # this test's roles only: the cluster is shared
    password = str(conninfo_to_dict(fresh_database)["password"])
    with psycopg.connect(fresh_database, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS reports (id int); INSERT INTO reports VALUES (7)")
    config = tmp_path / "broker.toml"
    anchor = tmp_path / "anchor.jsonl"
    init = jitsec("broker", "init", "--config", str(config), "--json", "--pkcs11-module", softhsm.module,
                  "--pkcs11-token", label, env={**env, "JITSEC_POSTGRES_ADMIN_DSN": fresh_database})
    assert init.returncode == 0, init.stderr
    keys = tomllib.loads(config.read_text())
    assert "audit_key" not in keys["broker"] and keys["keys"]["custody"] == "pkcs11"
    assert keys["engines"]["postgres"]["admin_password_sealed"].startswith("pkcs11-aes-gcm:")
    text = config.read_text().replace(f'role_prefix = "{"jitsec_"}"', f'role_prefix = "{role_prefix}"')
    config.write_text(text + f'\n[audit]\nanchor = "{anchor}"\nanchor_seconds = 1\n')
    for written in tmp_path.iterdir():  # neither the admin password nor any key is in a file we wrote
        assert password not in written.read_text(errors="replace"), written
    assert not list(tmp_path.glob("*.postgres-password"))
    principal_keys = json.loads(init.stdout)["keys"]

    port = str(free_port())
    refused = jitsec("broker", "serve", "--config", str(config), "--port", port,
                     env={**env, "JITSEC_PKCS11_PIN": "not-it"})
    assert refused.returncode == 2 and f"token '{label}'" in refused.stderr and "wrong PIN" in refused.stderr
    assert "not-it" not in refused.stderr and "Traceback" not in refused.stderr
    gone = jitsec("broker", "serve", "--config", str(config), "--port", port,
                  env={**env, "SOFTHSM2_CONF": str(tmp_path / "none.conf")})
    assert gone.returncode == 2 and label in gone.stderr

    server = subprocess.Popen([JITSEC, "broker", "serve", "--config", str(config), "--port", port], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        assert wait_until(lambda: _healthy(url), 30), "broker did not start"
        assert httpx.get(f"{url}/healthz").json()["key_custody"] == "pkcs11"
        scope = f"postgres:{conninfo_to_dict(fresh_database)['dbname']}:public.*:SELECT"
        with BrokerClient(url, key=principal_keys["orchestrator"]) as orchestrator:
            started = orchestrator.start_task("demo-agent", "hsm task", [scope, "reports:read"])
        with BrokerClient(url) as agent, agent.task(started.task_id, started.grant) as task:
            task.secret("token", ["reports:read"])
            access_token = task.secret("jwt", ["reports:read"]).value  # signed by a key in the token
            (published,) = httpx.get(f"{url}/.well-known/jwks.json").json()["keys"]
            claims = jwt.decode(access_token, jwt.PyJWK(published), algorithms=["ES256"], audience="reports")
            assert claims["scope"] == "reports:read"
            issued = task.secret("postgres", [scope])
            login = make_conninfo(fresh_database, user=issued.username, password=issued.value)
            with psycopg.connect(login) as conn:
                assert conn.execute("SELECT id FROM reports").fetchall() == [(7,)]
        assert wait_until(lambda: anchor.exists() and anchor.read_text().strip(), 15)
        ring = json.loads((tmp_path / "jwt-keys" / "ring.json").read_text())
        assert ring["current"]["key"].startswith("pkcs11:jwt-") and ring["current"]["kid"] == published["kid"]
        assert not list((tmp_path / "jwt-keys").glob("*.pem"))  # no key file: the key is in the token
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=30)
    assert password not in output

    verified = jitsec("audit", "verify", "--config", str(config), env=env)
    assert verified.returncode == 0, verified.stderr
    assert "audit chain intact" in verified.stdout and "checkpoints hold" in verified.stdout
    no_pin = jitsec("audit", "verify", "--config", str(config),
                    env={k: v for k, v in env.items() if k != "JITSEC_PKCS11_PIN"})
    assert no_pin.returncode == 2 and "JITSEC_PKCS11_PIN" in no_pin.stderr


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
