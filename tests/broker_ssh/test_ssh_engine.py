"""The SSH engine without a server: the certificate it signs (read back by ``cryptography`` and by
OpenSSH's own ``ssh-keygen``), the KRL it keeps (queried with ``ssh-keygen -Q``), its config errors."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import generate_private_key
from jitsec.broker.engines.base import EngineSettings, IssuedCredential, IssueRequest, RevokeOutcome
from jitsec.broker.engines.registry import build_engine
from jitsec.broker.engines.ssh import CertificateHandle, SshEngine, SshEngineConfig
from jitsec.broker.errors import BadRequest, ConfigError, EngineError
from jitsec.broker.sdk_ssh import SshKeys
from jitsec.scanner.validators import is_broker_ssh_certificate

from jitsec.testing import ManualClock


def engine_at(directory: Path, clock: ManualClock | None = None, **options: object) -> SshEngine:
    config = SshEngineConfig(ca_key=str(directory / "ca"), krl_file=str(directory / "revoked.krl"),
                             **options)  # type: ignore[arg-type]
    return SshEngine(config, clock=clock or time.time)


def issue(engine: SshEngine, scopes: tuple[str, ...] = ("ssh:principal:deploy",), *, lease: str = "lse_1",
          expires_at: float | None = None, public_key: str | None = None) -> IssuedCredential:
    now = engine._clock()
    return engine.issue(IssueRequest(
        lease_id=lease, agent="agent-a", task_id="tsk_1", task_name="nightly", scopes=scopes, ttl_seconds=60,
        expires_at=expires_at or now + 60,
        public_key=SshKeys().new_public_key() if public_key is None else public_key))


def is_revoked(krl: Path, certificate: str, tmp_path: Path) -> bool:
    cert_file = tmp_path / "query-cert.pub"
    cert_file.write_text(certificate + "\n")
    done = subprocess.run(["ssh-keygen", "-Q", "-f", str(krl), str(cert_file)],
                          capture_output=True, text=True, check=False)
    assert done.returncode in (0, 1), done.stderr
    return done.returncode == 1 and "REVOKED" in done.stdout


def test_the_certificate_states_the_lease_and_is_signed_by_the_published_ca(tmp_path: Path) -> None:
    clock = ManualClock(1_800_000_000.0)
    engine = engine_at(tmp_path, clock, commands={"backup": "/usr/local/bin/backup --run"})
    issued = issue(engine, ("ssh:principal:deploy", "ssh:principal:ops", "ssh:source:10.1.0.0/16",
                            "ssh:command:backup", "ssh:permit:pty"), expires_at=clock() + 90.7)
    certificate = serialization.load_ssh_public_identity(issued.secret.encode())
    assert isinstance(certificate, serialization.SSHCertificate)
    certificate.verify_cert_signature()
    ca = serialization.load_ssh_public_key((tmp_path / "ca.pub").read_bytes())
    assert certificate.signature_key().public_bytes(serialization.Encoding.OpenSSH,
                                                    serialization.PublicFormat.OpenSSH) == \
        ca.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    assert engine.ca_public_key.split()[:2] == (tmp_path / "ca.pub").read_text().split()[:2]
    assert certificate.type is serialization.SSHCertificateType.USER
    assert certificate.valid_principals == [b"deploy", b"ops"]
    assert certificate.key_id == b"jitsec agent=agent-a task=tsk_1 lease=lse_1"
    assert certificate.valid_before == 1_800_000_090  # never past the lease's expiry
    assert certificate.valid_after == 1_800_000_000 - 60
    assert certificate.critical_options == {b"force-command": b"/usr/local/bin/backup --run",
                                            b"source-address": b"10.1.0.0/16"}
    assert certificate.extensions == {b"permit-pty": b""}
    assert CertificateHandle.decode(issued.handle).serial == certificate.serial
    assert issued.username == "deploy" and issued.details["serial"] == str(certificate.serial)
    assert "secret=<redacted>" in repr(issued)


def test_openssh_reads_the_certificate_as_the_engine_meant_it(tmp_path: Path) -> None:
    issued = issue(engine_at(tmp_path), ("ssh:principal:deploy", "ssh:source:127.0.0.1/32"))
    (tmp_path / "id-cert.pub").write_text(issued.secret + "\n")
    listing = subprocess.run(["ssh-keygen", "-L", "-f", str(tmp_path / "id-cert.pub")], capture_output=True,
                             text=True, check=True).stdout
    assert "user certificate" in listing
    assert 'Key ID: "jitsec agent=agent-a task=tsk_1 lease=lse_1"' in listing
    assert "source-address 127.0.0.1/32" in listing
    assert f"Serial: {CertificateHandle.decode(issued.handle).serial}" in listing


def test_serials_are_unique_per_lease(tmp_path: Path) -> None:
    engine = engine_at(tmp_path)
    serials = {CertificateHandle.decode(issue(engine, lease=f"lse_{i}").handle).serial for i in range(300)}
    assert len(serials) == 300


def test_revocation_puts_the_serial_in_the_krl_once(tmp_path: Path) -> None:
    engine = engine_at(tmp_path)
    kept, revoked = issue(engine, lease="lse_kept"), issue(engine, lease="lse_gone")
    krl = tmp_path / "revoked.krl"
    assert not is_revoked(krl, revoked.secret, tmp_path)  # the KRL exists from the start, empty
    assert engine.revoke(revoked.handle) is RevokeOutcome.REVOKED
    assert engine.revoke(revoked.handle) is RevokeOutcome.ALREADY_GONE
    assert is_revoked(krl, revoked.secret, tmp_path)
    assert not is_revoked(krl, kept.secret, tmp_path)
    (tmp_path / "served.krl").write_bytes(engine.revoked.krl())
    assert is_revoked(tmp_path / "served.krl", revoked.secret, tmp_path)


def test_after_a_restart_the_krl_still_lists_every_revoked_unexpired_serial(tmp_path: Path) -> None:
    engine = engine_at(tmp_path)
    revoked = [issue(engine, lease=f"lse_{i}") for i in range(3)]
    for credential in revoked:
        engine.revoke(credential.handle)
    (tmp_path / "revoked.krl").unlink()  # lost, or never written after a crash
    restarted = engine_at(tmp_path)
    assert all(is_revoked(tmp_path / "revoked.krl", c.secret, tmp_path) for c in revoked)
    assert restarted.revoke(revoked[0].handle) is RevokeOutcome.ALREADY_GONE


def test_serials_leave_the_krl_once_their_certificate_is_long_expired(tmp_path: Path) -> None:
    clock = ManualClock(1_800_000_000.0)
    engine = engine_at(tmp_path, clock, keep_revoked_seconds=600)
    issued = issue(engine, expires_at=clock() + 60)
    engine.revoke(issued.handle)
    clock.advance(60 + 599)
    assert engine.reconcile(set()) == 0
    assert is_revoked(tmp_path / "revoked.krl", issued.secret, tmp_path)
    clock.advance(2)
    engine.reconcile(set())
    assert not is_revoked(tmp_path / "revoked.krl", issued.secret, tmp_path)
    assert engine.revoke(issued.handle) is RevokeOutcome.ALREADY_GONE  # expired: nothing left to revoke


def test_two_engines_sharing_the_files_lose_no_revocation(tmp_path: Path) -> None:
    """As two broker processes would: each its own engine and lock, one journal and KRL."""
    engines = [engine_at(tmp_path), engine_at(tmp_path)]
    issued = [issue(engines[0], lease=f"lse_{i}") for i in range(40)]

    def revoke_half(index: int) -> None:
        for credential in issued[index::2]:
            engines[index].revoke(credential.handle)

    threads = [threading.Thread(target=revoke_half, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    listed = subprocess.run(["ssh-keygen", "-Q", "-l", "-f", str(tmp_path / "revoked.krl")],
                            capture_output=True, text=True, check=True).stdout
    expected = {f"serial: {CertificateHandle.decode(c.handle).serial}" for c in issued}
    assert expected <= set(listed.splitlines())


def test_the_ca_key_file_is_private_and_kept_across_restarts(tmp_path: Path) -> None:
    first = engine_at(tmp_path)
    assert (tmp_path / "ca").stat().st_mode & 0o777 == 0o600
    assert engine_at(tmp_path).ca_public_key == first.ca_public_key
    assert subprocess.run(["ssh-keygen", "-y", "-f", str(tmp_path / "ca")], capture_output=True, text=True,
                          check=True).stdout.split()[:2] == first.ca_public_key.split()[:2]


def test_the_agent_must_send_an_ed25519_public_key(tmp_path: Path) -> None:
    engine = engine_at(tmp_path)
    with pytest.raises(BadRequest) as missing:
        issue(engine, public_key="")
    assert missing.value.code == "public_key_required"
    rsa = generate_private_key(public_exponent=65537, key_size=2048).public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    private = Ed25519PrivateKey.generate().private_bytes(serialization.Encoding.PEM,
                                                         serialization.PrivateFormat.OpenSSH,
                                                         serialization.NoEncryption()).decode()
    for wrong in (rsa, private, "ssh-ed25519 not-base64!", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5"):
        with pytest.raises(BadRequest) as refused:
            issue(engine, public_key=wrong)
        assert refused.value.code == "invalid_public_key"
        assert "PRIVATE" not in str(refused.value)


@pytest.mark.parametrize(("options", "message"), [
    ({"ca_key": "ca", "krl_file": "/tmp/x.krl"}, "ca_key must be an absolute path"),
    ({"ca_key": "/tmp/ca"}, "krl_file"),
    ({"ca_key": "/tmp/ca", "krl_file": "/tmp/k", "colour": "blue"}, "unknown option"),
    ({"ca_key": "/tmp/ca", "krl_file": "/tmp/k", "commands": {"Bad Name": "ls"}}, "not a valid name"),
    ({"ca_key": "/tmp/ca", "krl_file": "/tmp/k", "commands": {"ok": "  "}}, "non-empty printable"),
])
def test_config_errors_name_the_section_and_the_problem(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as error:
        build_engine("ssh", EngineSettings(name="ssh-prod", options=options))
    assert "engines.ssh-prod" in str(error.value)


def test_a_ca_key_that_is_not_ed25519_is_refused_at_start(tmp_path: Path) -> None:
    rsa = generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "ca").write_bytes(rsa.private_bytes(serialization.Encoding.PEM,
                                                    serialization.PrivateFormat.OpenSSH,
                                                    serialization.NoEncryption()))
    os.chmod(tmp_path / "ca", 0o600)
    with pytest.raises(ConfigError, match="Ed25519"):
        engine_at(tmp_path)


def test_an_unreadable_handle_is_an_engine_error(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match="unreadable lease handle"):
        engine_at(tmp_path).revoke("role=whatever")


def test_every_issued_certificate_is_recognised_as_the_brokers_by_the_scanner(tmp_path: Path) -> None:
    """The contract between the engine's key id and the scanner's validator (which cannot import the
    broker): a broker certificate is reported by fingerprint, not left to the live-lookup cache."""
    engine = engine_at(tmp_path)
    for index in range(20):
        assert is_broker_ssh_certificate(issue(engine, lease=f"lse_{index}").secret)
    ssh_keygen_ca, agent_key = tmp_path / "other-ca", tmp_path / "agent"
    for key in (ssh_keygen_ca, agent_key):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    subprocess.run(["ssh-keygen", "-q", "-s", str(ssh_keygen_ca), "-I", "deploy@ci", "-n", "deploy",
                    str(agent_key) + ".pub"], check=True)
    foreign = " ".join((tmp_path / "agent-cert.pub").read_text().split()[:2])
    assert not is_broker_ssh_certificate(foreign)  # another CA's certificate is not the broker's


def test_concurrent_revocations_share_writes_and_each_lease_is_revoked_once(tmp_path: Path) -> None:
    engine = engine_at(tmp_path)
    handles = [issue(engine, lease=f"lse_{i}").handle for i in range(60)]
    outcomes: list[RevokeOutcome] = []
    lock = threading.Lock()

    def revoke_all() -> None:  # every thread revokes every lease: one of them wins each
        for handle in handles:
            outcome = engine.revoke(handle)
            with lock:
                outcomes.append(outcome)

    threads = [threading.Thread(target=revoke_all) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count(RevokeOutcome.REVOKED) == len(handles)
    journal = (tmp_path / "revoked.krl.serials").read_text().splitlines()
    assert sorted(int(line.split()[0]) for line in journal) == sorted(
        CertificateHandle.decode(h).serial for h in handles)
