"""The real sshd as the SSH engine's peer: a broker whose CA that sshd trusts and whose KRL it reads,
and a login through the real ``ssh`` client. sshd reads both files on every login, so each test
installs its own CA without a restart; tests of this folder share the one sshd and run one at a time."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from jitsec.broker.sdk_ssh import SshIdentity

from jitsec.testing import EmbeddedBroker


@pytest.fixture(autouse=True)
def openssh_tools() -> None:
    """These tests check what the engine writes with OpenSSH's own ``ssh-keygen`` (and log in with
    ``ssh``): ``scripts/services start sshd`` installs them. Missing: a failure in CI, a skip elsewhere."""
    if shutil.which("ssh-keygen") and shutil.which("ssh"):
        return
    message = "the OpenSSH client tools are missing (run `scripts/services start sshd`)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@dataclass
class SshTarget:
    """The test sshd, seen from a client."""

    host: str
    port: int
    user: str
    known_hosts: Path
    work: Path

    def login(self, identity: SshIdentity, *, user: str | None = None, command: str = "echo logged-in") -> \
            subprocess.CompletedProcess[str]:
        """Run ``command`` over ssh with ``identity`` (its key and certificate written privately)."""
        key = identity.write(self.work / "identity")
        return subprocess.run(
            ["ssh", "-F", "/dev/null", "-i", str(key), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
             "-o", f"UserKnownHostsFile={self.known_hosts}", "-o", "StrictHostKeyChecking=yes",
             "-o", "ConnectTimeout=10", "-p", str(self.port), f"{user or self.user}@{self.host}", command],
            capture_output=True, text=True, timeout=30, check=False)

    def logs_in(self, identity: SshIdentity, **kwargs: Any) -> bool:
        done = self.login(identity, **kwargs)
        if done.returncode == 0:
            assert done.stdout.strip() == "logged-in", done.stdout
            return True
        assert "Permission denied" in done.stderr, done.stderr  # refused by sshd, not a network failure
        return False


@pytest.fixture
def ssh_target(sshd: dict[str, str], tmp_path: Path) -> SshTarget:
    known_hosts = tmp_path / "known_hosts"
    host_key = Path(sshd["host_key"]).read_text().split()
    known_hosts.write_text(f"[{sshd['host']}]:{sshd['port']} {host_key[0]} {host_key[1]}\n")
    return SshTarget(sshd["host"], int(sshd["port"]), sshd["user"], known_hosts, tmp_path)


def ssh_engine_options(directory: Path, krl_file: str, **extra: Any) -> dict[str, Any]:
    return {"kind": "ssh", "ca_key": str(directory / "ssh-ca"), "krl_file": krl_file,
            "default_ttl_seconds": 120, "max_ttl_seconds": 600, **extra}


@pytest.fixture
def ssh_broker(tmp_path: Path, sshd: dict[str, str]) -> Iterator[EmbeddedBroker]:
    """A served broker with an ``ssh`` engine whose CA the test sshd trusts and whose KRL it reads;
    ``demo-agent`` may get the sshd's user and one other principal."""
    (tmp_path / "broker").mkdir()
    broker = EmbeddedBroker(
        tmp_path / "broker",
        engines={"ssh": ssh_engine_options(tmp_path / "broker", sshd["krl_file"],
                                           commands={"whoami": "id -un"})},
        policy_engines={"ssh": {"scopes": [f"ssh:principal:{sshd['user']}", "ssh:principal:someone-else",
                                           "ssh:source:127.0.0.0/8", "ssh:command:whoami"],
                                "max_ttl_seconds": 600}},
    )
    Path(sshd["ca_file"]).write_text(broker.broker.engines["ssh"].ca_public_key + "\n")  # type: ignore[attr-defined]
    broker.start()
    try:
        yield broker
    finally:
        broker.close()
