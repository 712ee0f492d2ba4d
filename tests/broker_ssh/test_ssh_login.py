"""The SSH engine against the real sshd, through the agent SDK: what the certificate allows, sshd allows;
what the broker revoked or what expired, sshd refuses."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx
import pytest
from jitsec.broker.client import AgentTask
from jitsec.broker.sdk_ssh import ssh_certificate

from jitsec.testing import AGENT, EmbeddedBroker

from .conftest import SshTarget, ssh_engine_options

pytestmark = pytest.mark.sshd


def open_task(broker: EmbeddedBroker, scopes: list[str]) -> AgentTask:
    started = broker.client("orchestrator").start_task(AGENT, "deploy", scopes, ttl_seconds=600)
    return broker.client().task(started.task_id, started.grant, handle_sigterm=False)


def test_a_certificate_logs_in_as_its_principal_until_the_task_completes(
    ssh_broker: EmbeddedBroker, ssh_target: SshTarget
) -> None:
    scope = f"ssh:principal:{ssh_target.user}"
    with open_task(ssh_broker, [scope]) as task:
        credential = ssh_certificate(task, [scope])
        identity = credential.identity()
        assert ssh_target.logs_in(identity)
    assert not ssh_target.logs_in(identity)  # completion revoked the lease: its serial is in the KRL
    with pytest.raises(RuntimeError, match="purged"):
        credential.identity()  # the SDK forgot the certificate and its key


def test_a_certificate_for_another_principal_is_refused(
    ssh_broker: EmbeddedBroker, ssh_target: SshTarget
) -> None:
    with open_task(ssh_broker, ["ssh:principal:someone-else"]) as task:
        identity = ssh_certificate(task, ["ssh:principal:someone-else"]).identity()
        assert not ssh_target.logs_in(identity)


def test_sshd_enforces_the_forced_command_and_source_from_policy(
    ssh_broker: EmbeddedBroker, ssh_target: SshTarget
) -> None:
    scopes = [f"ssh:principal:{ssh_target.user}", "ssh:command:whoami", "ssh:source:127.0.0.0/8"]
    with open_task(ssh_broker, scopes) as task:
        identity = ssh_certificate(task, scopes).identity()
        done = ssh_target.login(identity, command="echo something else")
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == ssh_target.user  # the configured `id -un` ran instead


def test_rotation_makes_a_new_key_pair_and_the_old_certificate_stops_working(
    ssh_broker: EmbeddedBroker, ssh_target: SshTarget
) -> None:
    scope = f"ssh:principal:{ssh_target.user}"
    with open_task(ssh_broker, [scope]) as task:
        credential = ssh_certificate(task, [scope])
        first = credential.identity()
        old_lease = credential.lease_id
        credential.rotate()
        second = credential.identity()
        assert credential.lease_id != old_lease
        assert second.private_key_openssh() != first.private_key_openssh()
        assert ssh_target.logs_in(second)
        assert not ssh_target.logs_in(first)


def test_the_ca_key_and_the_krl_are_published_without_authentication(
    ssh_broker: EmbeddedBroker, ssh_target: SshTarget, tmp_path: Path
) -> None:
    scope = f"ssh:principal:{ssh_target.user}"
    ca = httpx.get(f"{ssh_broker.url}/v1/ssh/ca.pub", timeout=10)
    assert ca.status_code == 200
    assert ca.text.strip() == ssh_broker.broker.engines["ssh"].ca_public_key  # type: ignore[attr-defined]
    with open_task(ssh_broker, [scope]) as task:
        identity = ssh_certificate(task, [scope]).identity()
    (tmp_path / "cert.pub").write_text(identity.certificate + "\n")
    krl = httpx.get(f"{ssh_broker.url}/v1/ssh/krl", timeout=10)
    assert krl.status_code == 200
    (tmp_path / "served.krl").write_bytes(krl.content)
    query = subprocess.run(
        ["ssh-keygen", "-Q", "-f", str(tmp_path / "served.krl"), str(tmp_path / "cert.pub")],
        capture_output=True, text=True, check=False)
    assert query.returncode == 1 and "REVOKED" in query.stdout


def test_expiry_holds_with_the_broker_down(
    tmp_path: Path, sshd: dict[str, str], ssh_target: SshTarget
) -> None:
    scope = f"ssh:principal:{ssh_target.user}"
    broker = EmbeddedBroker(tmp_path, engines={"ssh": ssh_engine_options(tmp_path, sshd["krl_file"])},
                            policy_engines={"ssh": {"scopes": [scope]}})
    Path(sshd["ca_file"]).write_text(broker.broker.engines["ssh"].ca_public_key + "\n")  # type: ignore[attr-defined]
    broker.start()
    try:
        task = open_task(broker, [scope]).__enter__()
        credential = ssh_certificate(task, [scope], ttl_seconds=3)
        identity = credential.identity()
        expires_at = credential.secret.expires_at
        assert ssh_target.logs_in(identity)
    finally:
        broker.close()  # no reaper, no revocation: only the certificate's own valid_before is left
    time.sleep(max(0.0, int(expires_at) + 1.5 - time.time()))
    (tmp_path / "cert.pub").write_text(identity.certificate + "\n")
    query = subprocess.run(["ssh-keygen", "-Q", "-f", sshd["krl_file"], str(tmp_path / "cert.pub")],
                           capture_output=True, text=True, check=False)
    assert query.returncode == 0, query.stdout  # not in the KRL: the refusal below is the expiry's
    assert not ssh_target.logs_in(identity)
