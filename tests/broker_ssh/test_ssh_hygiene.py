"""What the broker keeps of an SSH lease: a fingerprint, the serial and expiry (the handle), never the
certificate and never the agent's private key (which never leaves the agent's process)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from jitsec.broker.sdk_ssh import ssh_certificate

from jitsec.testing import AGENT, EmbeddedBroker

from .conftest import ssh_engine_options


def test_neither_certificate_nor_private_key_reaches_store_log_or_files(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    scope = "ssh:principal:deploy"
    broker = EmbeddedBroker(tmp_path, engines={"ssh": ssh_engine_options(tmp_path, str(tmp_path / "r.krl"))},
                            policy_engines={"ssh": {"scopes": [scope]}}).start()
    held: list[str] = []
    try:
        started = broker.client("orchestrator").start_task(AGENT, "deploy", [scope], ttl_seconds=600)
        with broker.client().task(started.task_id, started.grant, handle_sigterm=False) as task:
            credential = ssh_certificate(task, [scope])
            for _ in range(3):
                identity = credential.identity()
                held += [identity.certificate.split()[1], identity.private_key_openssh().decode()]
                assert identity.certificate not in repr(credential) + repr(identity)
                credential.rotate()
    finally:
        broker.close()
    # 48 characters from the middle of each: random key or signature bytes, enough to recognise it
    bodies = [text[len(text) // 2:len(text) // 2 + 48] for text in held]
    files = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert any(path.name == "broker.db" for path in files)
    for path in files:
        data = path.read_bytes().decode("latin-1")
        assert not any(body in data for body in bodies), path
    assert not any(body in caplog.text for body in bodies)
