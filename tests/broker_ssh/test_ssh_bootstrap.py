"""``jitsec broker init`` sets the SSH engine up: a private CA key, its public line for sshd, and a
config whose broker builds the engine over them."""

from __future__ import annotations

import subprocess
from pathlib import Path

from jitsec.broker.bootstrap import init_config
from jitsec.broker.config import load_config
from jitsec.broker.engines.ssh import SshEngine
from jitsec.broker.runtime import build_broker


def test_init_makes_the_ca_key_and_the_broker_uses_it(tmp_path: Path) -> None:
    init_config(tmp_path / "broker.toml")
    key, public = tmp_path / "ssh-ca", tmp_path / "ssh-ca.pub"
    assert key.stat().st_mode & 0o777 == 0o600
    derived = subprocess.run(["ssh-keygen", "-y", "-f", str(key)], capture_output=True, text=True, check=True)
    assert derived.stdout.split()[:2] == public.read_text().split()[:2]
    broker = build_broker(load_config(tmp_path / "broker.toml"))
    try:
        engine = broker.engines["ssh"]
        assert isinstance(engine, SshEngine)
        assert engine.ca_public_key.split()[:2] == public.read_text().split()[:2]
        assert (tmp_path / "ssh-revoked.krl").read_bytes().startswith(b"SSHKRL\n\x00")
    finally:
        broker.close()


def test_init_again_with_force_keeps_the_ca_servers_already_trust(tmp_path: Path) -> None:
    init_config(tmp_path / "broker.toml")
    before = (tmp_path / "ssh-ca.pub").read_text()
    init_config(tmp_path / "broker.toml", force=True)
    assert (tmp_path / "ssh-ca.pub").read_text() == before
