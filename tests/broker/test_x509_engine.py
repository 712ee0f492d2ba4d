"""The x509 engine on its own: what it signs, what CSRs it refuses, its CRL across revocations and
restarts, its reconciler, its scope grammar, and the scanner's fingerprint of a leaked key."""

from __future__ import annotations

import datetime as dt
import stat
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypothesis import given
from hypothesis import strategies as st
from jitsec.broker.engines.base import EngineSettings, IssueRequest, RevokeOutcome
from jitsec.broker.engines.registry import build_engine
from jitsec.broker.engines.x509 import CertificateHandle, X509Engine, X509EngineConfig
from jitsec.broker.engines.x509_scope import parse_scope
from jitsec.broker.engines.x509_signer import EcKeyFileSigner
from jitsec.broker.errors import BadRequest, ConfigError, EngineError, ScopeError
from jitsec.broker.sdk_x509 import KeyRing
from jitsec.scanner.key_fingerprint import derived_fingerprint

from jitsec.testing import ManualClock

NOW = 1_900_000_000.0


def engine_at(tmp_path: Path, clock: ManualClock, **options: object) -> X509Engine:
    config = X509EngineConfig.from_options("x509", {"state_dir": str(tmp_path / "ca"), **options})
    return X509Engine(config, clock=clock)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
def engine(tmp_path: Path, clock: ManualClock) -> X509Engine:
    return engine_at(tmp_path, clock)


def request(csr: str, lease: str = "lse_1", scopes: tuple[str, ...] = ("x509:name:api.internal",),
            ttl: int = 300) -> IssueRequest:
    return IssueRequest(lease_id=lease, agent="demo-agent", task_id="tsk_abc", task_name="weekly report",
                        scopes=scopes, ttl_seconds=ttl, expires_at=NOW + ttl, public_key=csr)


def csr_for(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
            extension: x509.ExtensionType | None = None) -> str:
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "admin")]))
    if extension is not None:
        builder = builder.add_extension(extension, critical=True)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


def crl_serials(engine: X509Engine) -> set[int]:
    crl = x509.load_der_x509_crl(engine.crl_der)
    assert crl.is_signature_valid(engine.ca.certificate.public_key())  # type: ignore[arg-type]
    return {entry.serial_number for entry in crl}


def test_the_certificate_names_agent_and_task_and_expires_with_the_lease(engine: X509Engine) -> None:
    scopes = ("x509:name:api.internal", "x509:name:b.example")
    issued = engine.issue(request(KeyRing().new_csr(), scopes=scopes))
    cert = x509.load_pem_x509_certificate(issued.secret.encode())
    cert.verify_directly_issued_by(engine.ca.certificate)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.UniformResourceIdentifier) == ["jitsec://agent/demo-agent/task/tsk_abc"]
    assert names.get_values_for_type(x509.DNSName) == ["api.internal", "b.example"]
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "demo-agent"  # not the CSR's
    assert cert.not_valid_after_utc == dt.datetime.fromtimestamp(NOW + 300, dt.UTC)
    assert cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value == x509.ExtendedKeyUsage(
        [ExtendedKeyUsageOID.CLIENT_AUTH])
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert points[0].full_name == [x509.UniformResourceIdentifier(engine.config.crl_url)]
    assert CertificateHandle.decode(issued.handle).serial == format(cert.serial_number, "x")
    assert "PRIVATE" not in repr(issued)


def test_the_lease_fingerprint_is_what_a_scanner_derives_from_the_leaked_key(engine: X509Engine) -> None:
    ring = KeyRing()
    issued = engine.issue(request(ring.new_csr()))
    key = ring.key_for(x509.load_pem_x509_certificate(issued.secret.encode()))
    for form in (serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL):
        pem = key.private_bytes(serialization.Encoding.PEM, form, serialization.NoEncryption()).decode()
        assert derived_fingerprint(pem) == issued.fingerprint
    encrypted = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.BestAvailableEncryption(b"pw")).decode()
    assert derived_fingerprint(encrypted) is None
    assert derived_fingerprint("-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----") is None


@pytest.mark.parametrize(("key", "extension", "message"), [
    (ec.generate_private_key(ec.SECP256R1()), x509.BasicConstraints(ca=True, path_length=None), "extensions"),
    (ec.generate_private_key(ec.SECP256R1()),
     x509.SubjectAlternativeName([x509.DNSName("evil.example")]), "extensions"),
    (ec.generate_private_key(ec.SECP521R1()), None, "P-256 or P-384"),
    (rsa.generate_private_key(65537, 1024), None, "2048"),  # noqa: S505 - the weak key to refuse
])
def test_a_csr_asking_for_more_than_a_key_is_refused(
    engine: X509Engine, key: ec.EllipticCurvePrivateKey, extension: x509.ExtensionType | None, message: str
) -> None:
    with pytest.raises(BadRequest, match=message) as raised:
        engine.issue(request(csr_for(key, extension)))
    assert raised.value.code == "invalid_public_key"


def test_a_csr_with_a_broken_signature_or_none_at_all_is_refused(engine: X509Engine) -> None:
    good = csr_for(ec.generate_private_key(ec.SECP256R1()))
    der = bytearray(x509.load_pem_x509_csr(good.encode()).public_bytes(serialization.Encoding.DER))
    der[-3] ^= 0x01  # inside the signature
    tampered = x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM).decode()
    with pytest.raises(BadRequest, match="signature"):
        engine.issue(request(tampered))
    for bad in ("", "ssh-ed25519 AAAA", "x" * 20_000):
        with pytest.raises(BadRequest):
            engine.issue(request(bad))


def test_a_key_is_certified_once(engine: X509Engine) -> None:
    csr = KeyRing().new_csr()
    engine.issue(request(csr))
    with pytest.raises(BadRequest, match="certified before"):
        engine.issue(request(csr, lease="lse_2"))


def test_revocation_lists_the_serial_and_writes_the_crl_file(engine: X509Engine) -> None:
    first = engine.issue(request(KeyRing().new_csr()))
    second = engine.issue(request(KeyRing().new_csr(), "lse_2"))
    assert crl_serials(engine) == set()
    assert engine.revoke(first.handle) is RevokeOutcome.REVOKED
    assert engine.revoke(first.handle) is RevokeOutcome.ALREADY_GONE
    serial = int(CertificateHandle.decode(first.handle).serial, 16)
    assert crl_serials(engine) == {serial}
    on_disk = x509.load_pem_x509_crl(engine.config.crl_file.read_bytes())
    assert [entry.serial_number for entry in on_disk] == [serial]
    assert int(CertificateHandle.decode(second.handle).serial, 16) not in crl_serials(engine)


def test_after_a_restart_the_crl_lists_every_revoked_unexpired_serial(
    tmp_path: Path, clock: ManualClock
) -> None:
    engine = engine_at(tmp_path, clock)
    short = engine.issue(request(KeyRing().new_csr(), "lse_s", ttl=60))
    long = engine.issue(request(KeyRing().new_csr(), "lse_l", ttl=600))
    for issued in (short, long):
        engine.revoke(issued.handle)
    engine.close()
    clock.advance(120)  # the short one has expired: a TLS server refuses it without a CRL entry
    again = engine_at(tmp_path, clock)
    assert crl_serials(again) == {int(CertificateHandle.decode(long.handle).serial, 16)}
    assert again.ca.certificate == engine.ca.certificate  # same CA after a restart
    key_file = tmp_path / "ca" / "ca-key.pem"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_an_expired_certificate_needs_no_revocation(engine: X509Engine, clock: ManualClock) -> None:
    issued = engine.issue(request(KeyRing().new_csr(), ttl=60))
    clock.advance(61)
    assert engine.revoke(issued.handle) is RevokeOutcome.ALREADY_GONE
    assert crl_serials(engine) == set()


def test_concurrent_revocations_all_reach_the_crl(engine: X509Engine) -> None:
    handles = [engine.issue(request(KeyRing().new_csr(), f"lse_{i}")).handle for i in range(24)]
    threads = [threading.Thread(target=engine.revoke, args=(handle,)) for handle in handles]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert crl_serials(engine) == {int(CertificateHandle.decode(h).serial, 16) for h in handles}
    on_disk = x509.load_pem_x509_crl(engine.config.crl_file.read_bytes())
    assert len(list(on_disk)) == 24


def test_the_reconciler_revokes_certificates_no_lease_backs(engine: X509Engine, clock: ManualClock) -> None:
    kept = engine.issue(request(KeyRing().new_csr(), "lse_kept"))
    orphan = engine.issue(request(KeyRing().new_csr(), "lse_orphan"))
    assert engine.reconcile([kept.handle]) == 0  # both younger than the grace period
    clock.advance(engine.config.reconcile_grace_seconds + 1)
    young = engine.issue(request(KeyRing().new_csr(), "lse_young"))
    assert engine.reconcile([kept.handle]) == 1
    assert crl_serials(engine) == {int(CertificateHandle.decode(orphan.handle).serial, 16)}
    assert int(CertificateHandle.decode(young.handle).serial, 16) not in crl_serials(engine)


def test_the_registry_builds_it_and_bad_options_are_config_errors(tmp_path: Path) -> None:
    engine = build_engine("x509", EngineSettings(name="certs", options={"state_dir": str(tmp_path)}))
    assert isinstance(engine, X509Engine) and engine.name == "certs"
    with pytest.raises(ConfigError, match="unknown option"):
        build_engine("x509", EngineSettings(name="x", options={"state_dir": str(tmp_path), "nope": 1}))
    with pytest.raises(ConfigError, match="state_dir"):
        build_engine("x509", EngineSettings(name="x", options={}))
    with pytest.raises(EngineError, match="handle"):
        engine.revoke("not json")


def test_a_ca_key_that_is_not_p256_is_refused(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    path = tmp_path / "ca-key.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    with pytest.raises(ConfigError, match="P-256"):
        EcKeyFileSigner(path)


@pytest.mark.parametrize("scope", ["x509:name:api.internal", "x509:name:a", "x509:name:a-b.c0.d"])
def test_scopes_name_one_host(scope: str) -> None:
    assert parse_scope(scope) == scope.removeprefix("x509:name:")


@pytest.mark.parametrize("scope", ["x509:name:*.example", "x509:name:Api.internal", "x509:name:",
                                   "x509:name:a..b", "x509:name:-a", "x509:name:a.", "x509:dns:a",
                                   "postgres:db:s.t:SELECT", "x509:name:" + "a" * 254])
def test_other_scopes_are_refused(scope: str) -> None:
    with pytest.raises(ScopeError):
        parse_scope(scope)


@given(st.text(max_size=80))
def test_the_scope_parser_accepts_only_host_names(text: str) -> None:
    try:
        name = parse_scope(text)
    except ScopeError:
        return
    assert text == "x509:name:" + name
    assert all(label and len(label) <= 63 and not label.startswith("-") and not label.endswith("-")
               for label in name.split("."))
    assert name == name.lower() and name.isascii() and "*" not in name


def test_the_reload_command_runs_after_each_crl_write(tmp_path: Path, clock: ManualClock,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    copy = tmp_path / "seen-by-the-server.pem"
    command = ["cp", str(tmp_path / "ca" / "crl.pem"), str(copy)]
    engine = engine_at(tmp_path, clock, crl_reload_command=command)
    issued = engine.issue(request(KeyRing().new_csr()))
    engine.revoke(issued.handle)
    assert copy.read_bytes() == engine.config.crl_file.read_bytes()  # ran after the write, not before
    failing = engine_at(tmp_path / "other", clock, crl_reload_command=["false"])
    issued = failing.issue(request(KeyRing().new_csr()))
    assert failing.revoke(issued.handle) is RevokeOutcome.REVOKED  # recorded and written all the same
    assert "reload command false exited 1" in caplog.text
    with pytest.raises(ConfigError, match="crl_reload_command"):
        engine_at(tmp_path / "bad", clock, crl_reload_command="nginx -s reload")


def test_any_signer_can_hold_the_ca_key(tmp_path: Path, clock: ManualClock) -> None:
    """An HSM-held key reaches the engine as a ``Signer`` only (its public half from the JWK)."""
    signer = EcKeyFileSigner(tmp_path / "elsewhere" / "key.pem")
    engine = X509Engine(X509EngineConfig(state_dir=str(tmp_path / "ca")), signer=signer, clock=clock)
    issued = engine.issue(request(KeyRing().new_csr()))
    x509.load_pem_x509_certificate(issued.secret.encode()).verify_directly_issued_by(engine.ca.certificate)
    assert engine.ca.certificate.public_key() == signer.public_key
    assert not (tmp_path / "ca" / "ca-key.pem").exists()  # no key file of the engine's own


@given(st.text(max_size=300))
def test_the_csr_check_refuses_any_text_with_a_reason(text: str) -> None:
    from jitsec.broker.engines.x509_csr import check_csr  # noqa: PLC0415

    with pytest.raises(BadRequest) as refused:
        check_csr(text)
    assert refused.value.code == "invalid_public_key"
    assert str(refused.value).startswith("x509: ") and len(str(refused.value)) < 200  # no echo of the input
