"""The leak loop with the SSH engine and the real sshd: a certificate written where the scanner reads
is recognised as a live lease (by its fingerprint), the broker revokes it, and sshd refuses it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from jitsec.broker.sdk_ssh import ssh_certificate
from jitsec.scanner.ruleset import load_ruleset

from jitsec.testing import EmbeddedBroker, LoopScanner

from .conftest import SshTarget
from .test_ssh_login import open_task

pytestmark = pytest.mark.sshd


def test_a_leaked_certificate_is_revoked_and_sshd_refuses_it(
    ssh_broker: EmbeddedBroker, ssh_target: SshTarget, tmp_path: Path
) -> None:
    log = tmp_path / "agent.log"
    log.write_text("")
    loop = LoopScanner(log, ssh_broker.url, ssh_broker.keys["scanner"], tmp_path / "state",
                       ruleset=load_ruleset(), engine="python").start()
    try:
        scope = f"ssh:principal:{ssh_target.user}"
        with open_task(ssh_broker, [scope]) as task:
            credential = ssh_certificate(task, [scope])
            identity = credential.identity()
            assert ssh_target.logs_in(identity)
            with log.open("a") as out:  # an agent that dumps its files into a log
                out.write(f"DEBUG loaded identity: {identity.certificate} agent@build\n")
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not loop.responder.incidents.snapshot():
                time.sleep(0.02)
            [incident] = loop.responder.incidents.snapshot()
            assert incident.action.value == "revoked" and incident.lease_id == credential.lease_id
            lease = ssh_broker.client("admin").get_lease(credential.lease_id)
            assert lease["state"] == "revoked"
            assert not ssh_target.logs_in(identity)
    finally:
        loop.close()
