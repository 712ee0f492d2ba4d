"""The signing engines with their keys in a real PKCS#11 token (SoftHSM2): the x509 CA key and the jwt
engine's keys are made in the token, non-extractable, and what they sign verifies with ordinary
libraries against nothing but the published CA certificate or JWKS; rotation makes a new token key
and deletes the old pair while its public JWK stays published."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import tomli_w
from click.testing import CliRunner
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from jitsec.broker.bootstrap import init_config
from jitsec.broker.client import BrokerClient
from jitsec.broker.config import load_config, parse_config
from jitsec.broker.custody.base import HSM, CustodyError, file_custody
from jitsec.broker.custody.opening import open_custody
from jitsec.broker.custody.pkcs11_token import create_token_keys
from jitsec.broker.custody.settings import PIN_ENV, KeySettings, TokenSettings
from jitsec.broker.custody.signers import CustodyKeys, TokenSigner
from jitsec.broker.engines.base import EngineSettings, IssueRequest
from jitsec.broker.engines.jwt import create as create_jwt
from jitsec.broker.engines.jwt import key_ring
from jitsec.broker.engines.registry import build_engine
from jitsec.broker.errors import ConfigError
from jitsec.broker.sdk_ssh import SshKeys

from jitsec.commands.broker_jwt import jwt_group

SCOPE = "x509:name:api.internal"


@pytest.fixture
def token_keys(softhsm, monkeypatch) -> TokenSettings:
    """Fresh master keys in the session's token (labels of this test), the PIN in the environment."""
    tag = uuid.uuid4().hex[:8]
    settings = TokenSettings(module=softhsm.module, token=softhsm.token, audit_key_label=f"audit-{tag}",
                             anchor_key_label=f"anchor-{tag}", kek_label=f"kek-{tag}")
    create_token_keys(settings, softhsm.pin).close()
    monkeypatch.setenv(PIN_ENV, softhsm.pin)
    return settings


def keys_section(settings: TokenSettings) -> dict[str, str]:
    return {"custody": "pkcs11", "module": settings.module, "token": settings.token,
            "audit_key_label": settings.audit_key_label, "anchor_key_label": settings.anchor_key_label,
            "kek_label": settings.kek_label}


def token_broker_config(env: Any, token_keys: TokenSettings, tag: str) -> dict[str, Any]:
    raw = env.raw_config(
        engines={"token": {}, "x509": {"state_dir": str(env.tmp / "ca"), "ca_key": f"pkcs11:ca-{tag}"},
                 "jwt": {"keys": f"pkcs11:jwt-{tag}", "ring": str(env.tmp / "ring"),
                         "max_ttl_seconds": 600}},
        policy=[{"agent": "demo-agent", "max_task_ttl_seconds": 900,
                 "engines": {"x509": {"scopes": ["x509:name:*.internal"]},
                             "jwt": {"scopes": ["reports:*"]}}}],
    )
    del raw["broker"]["audit_key"]
    raw["keys"] = keys_section(token_keys)
    return raw


def private_half(custody: Any, label: str) -> Any:
    pkcs11 = custody.session.pkcs11
    return custody.session.run(lambda raw: raw.get_key(object_class=pkcs11.ObjectClass.PRIVATE_KEY,
                                                       label=label))


def test_a_broker_signs_certificates_and_jwts_with_token_keys_that_verify_and_stay_inside(
    env, serve, token_keys
) -> None:
    tag = uuid.uuid4().hex[:8]
    running = serve(config=parse_config(token_broker_config(env, token_keys, tag), source="test"))
    ca = x509.load_pem_x509_certificate(httpx.get(f"{running.url}/v1/x509/ca.pem").content)
    jwks = httpx.get(f"{running.url}/.well-known/jwks.json").json()
    started = running.client("orchestrator").start_task("demo-agent", "report", [SCOPE, "reports:read"],
                                                         ttl_seconds=600)
    with BrokerClient(running.url).task(started.task_id, started.grant, handle_sigterm=False) as task:
        certificate = x509.load_pem_x509_certificate(
            task.client_certificate("x509", [SCOPE]).certificate_pem.encode())
        token = task.secret("jwt", ["reports:read"]).value
    certificate.verify_directly_issued_by(ca)  # signed in the token, checked by cryptography
    crl = x509.load_der_x509_crl(httpx.get(f"{running.url}/v1/x509/crl").content)
    assert crl.is_signature_valid(ca.public_key())
    assert certificate.serial_number in {entry.serial_number for entry in crl}  # completion revoked it
    (key,) = jwks["keys"]
    assert "d" not in key and key["alg"] == "ES256"
    issuer = running.broker.engines["jwt"].issuer
    claims = jwt.decode(token, jwt.PyJWK(key), algorithms=["ES256"], issuer=issuer,
                        options={"verify_aud": False})
    assert claims["scope"] == "reports:read"
    assert jwt.get_unverified_header(token)["kid"] == key["kid"]
    ring = json.loads((env.tmp / "ring" / "ring.json").read_text())
    assert ring["current"]["key"].startswith(f"pkcs11:jwt-{tag}-") and "file" not in ring["current"]
    assert not list((env.tmp / "ring").glob("*.pem")) and not list((env.tmp / "ca").glob("*key*"))
    custody = running.broker.custody
    pkcs11 = custody.session.pkcs11
    for label in (f"ca-{tag}", ring["current"]["key"].removeprefix("pkcs11:")):
        private = private_half(custody, label)
        assert private[pkcs11.Attribute.SENSITIVE] and not private[pkcs11.Attribute.EXTRACTABLE]
        with pytest.raises(pkcs11.exceptions.AttributeSensitive):
            private[pkcs11.Attribute.VALUE]


def test_the_ca_key_is_made_once_and_a_restart_signs_with_the_same_token_key(token_keys, tmp_path) -> None:
    label = f"ca-{uuid.uuid4().hex[:8]}"
    custody = open_custody(KeySettings(custody=HSM, token=token_keys), b"")
    try:
        settings = EngineSettings(name="x509", signing_keys=CustodyKeys(custody),
                                  options={"state_dir": str(tmp_path / "ca"), "ca_key": f"pkcs11:{label}"})
        first = build_engine("x509", settings)
        again = build_engine("x509", settings)  # finds the pair and the certificate made for it
        assert again.ca_certificate_pem == first.ca_certificate_pem  # type: ignore[attr-defined]
        made = TokenSigner.load(custody.session, label)  # type: ignore[arg-type]
        ca = x509.load_pem_x509_certificate(first.ca_certificate_pem.encode())  # type: ignore[attr-defined]
        numbers = ca.public_key().public_numbers()  # type: ignore[union-attr]
        jwk = made.public_jwk()
        assert jwt.PyJWK(jwk).key.public_numbers() == numbers
        other = EngineSettings(name="x509", options={"state_dir": str(tmp_path / "ca"),
                                                     "ca_key": f"pkcs11:{label}-other"},
                               signing_keys=CustodyKeys(custody))
        with pytest.raises(ConfigError, match="not the certificate of the CA key"):
            build_engine("x509", other)  # another key must not sign under the existing CA certificate
    finally:
        custody.close()


def test_rotation_in_the_token_keeps_the_old_jwk_published_and_deletes_the_old_pair(
    token_keys, tmp_path
) -> None:
    tag = uuid.uuid4().hex[:8]
    custody = open_custody(KeySettings(custody=HSM, token=token_keys), b"")
    try:
        settings = EngineSettings(name="jwt", signing_keys=CustodyKeys(custody),
                                  options={"keys": f"pkcs11:jwt-{tag}", "ring": str(tmp_path / "r")})
        assert create_jwt(settings).blocking_io  # signing goes to the token: issued off the event loop
        old_label = json.loads((tmp_path / "r" / "ring.json").read_text())["current"]["key"]
        state, retired = key_ring(settings).rotate(time.time(), keep_seconds=600)
        new_label = json.loads((tmp_path / "r" / "ring.json").read_text())["current"]["key"]
        assert new_label != old_label and state.signer.key_id != retired.jwk["kid"]
        assert not CustodyKeys(custody).exists(old_label)  # nothing can sign with the retired key
        assert CustodyKeys(custody).exists(new_label)
        published = jwt.PyJWKSet.from_dict(state.jwks(time.time()))
        assert [key.key_id for key in published.keys] == [state.signer.key_id, retired.jwk["kid"]]
        fresh = create_jwt(settings)  # a restarted broker signs with the new token key
        issued = fresh.issue(IssueRequest(
            lease_id="lse_1", agent="demo-agent", task_id="tsk_1", task_name="t", scopes=("reports:read",),
            ttl_seconds=60, expires_at=time.time() + 60))
        header = jwt.get_unverified_header(issued.secret)
        assert header["kid"] == state.signer.key_id
        claims = jwt.decode(issued.secret, published[header["kid"]], algorithms=["ES256"],
                            options={"verify_aud": False})
        assert claims["jti"] == "lse_1"
    finally:
        custody.close()


def test_the_cli_rotates_a_token_ring_with_the_pin_from_the_environment(env, token_keys, tmp_path) -> None:
    raw = token_broker_config(env, token_keys, uuid.uuid4().hex[:8])
    path = tmp_path / "broker.toml"
    path.write_bytes(tomli_w.dumps(raw).encode())
    runner = CliRunner()
    listed = runner.invoke(jwt_group, ["keys", "--config", str(path), "--json"])
    assert listed.exit_code == 0, listed.output
    first = json.loads(listed.output)["keys"][0]["kid"]
    rotated = runner.invoke(jwt_group, ["rotate-key", "--config", str(path), "--json"])
    assert rotated.exit_code == 0, rotated.output
    assert json.loads(rotated.output)["retired"] == first
    ring = json.loads((env.tmp / "ring" / "ring.json").read_text())
    assert ring["current"]["kid"] == json.loads(rotated.output)["current"] and "key" in ring["current"]


def test_an_ssh_ca_key_is_a_path_or_a_token_label(tmp_path: Path) -> None:
    krl = str(tmp_path / "r.krl")
    for ca_key, ca_public_key in (("pkcs11:", ""), ("relative/ca", ""), ("pkcs11:ca", "relative.pub")):
        with pytest.raises(ConfigError, match="must be an absolute path"):
            build_engine("ssh", EngineSettings(name="ssh", options={
                "ca_key": ca_key, "krl_file": krl, "ca_public_key": ca_public_key}))


@pytest.mark.parametrize("options, message", [
    ({"keys": "pkcs11:"}, "label prefix must be 1-40"),
    ({"keys": "folder", "ring": "r"}, "ring is only for keys in a token"),
    ({"keys": "pkcs11:jwt", "ring": ""}, "ring must be a folder path"),
])
def test_jwt_key_options_are_checked(options: dict[str, str], message: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=message):
        create_jwt(EngineSettings(name="jwt", options=options, config_dir=tmp_path))


def test_a_token_key_without_a_token_is_refused_with_what_to_configure(tmp_path: Path) -> None:
    for kind, options in (("x509", {"state_dir": str(tmp_path / "ca"), "ca_key": "pkcs11:ca"}),
                          ("jwt", {"keys": "pkcs11:jwt"}),
                          ("ssh", {"ca_key": "pkcs11:ssh-ca", "krl_file": str(tmp_path / "r.krl")})):
        for keys in (None, CustodyKeys(file_custody(b"k" * 32))):
            with pytest.raises(CustodyError, match="custody = \"pkcs11\""):
                build_engine(kind, EngineSettings(name=kind, options=options, config_dir=tmp_path,
                                                  signing_keys=keys))


def test_a_ca_key_file_is_made_private_and_reused(tmp_path: Path) -> None:
    settings = EngineSettings(name="x509", config_dir=tmp_path,
                              options={"state_dir": str(tmp_path / "ca"), "ca_key": "ca.pem.key"})
    first = build_engine("x509", settings)
    assert (tmp_path / "ca.pem.key").stat().st_mode & 0o077 == 0
    again = build_engine("x509", settings)
    assert again.ca_certificate_pem == first.ca_certificate_pem  # type: ignore[attr-defined]
    key = serialization.load_pem_private_key((tmp_path / "ca.pem.key").read_bytes(), None)
    ca = x509.load_pem_x509_certificate(first.ca_certificate_pem.encode())  # type: ignore[attr-defined]
    assert ca.public_key() == key.public_key()


def test_init_with_a_token_puts_the_jwt_keys_in_it(softhsm, monkeypatch, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    token = TokenSettings(module=softhsm.module, token=softhsm.token, audit_key_label=f"audit-{tag}",
                          anchor_key_label=f"anchor-{tag}", kek_label=f"kek-{tag}")
    monkeypatch.setenv(PIN_ENV, softhsm.pin)
    init_config(tmp_path / "broker.toml", token=token, pin=softhsm.pin)
    config = load_config(tmp_path / "broker.toml")
    section = config.engines["jwt"].settings
    assert section.options["keys"] == "pkcs11:jwt"
    custody = open_custody(config.keys, config.audit_key)
    try:
        engine = build_engine("jwt", replace(section, signing_keys=CustodyKeys(custody, section.config_dir)))
        (key,) = json.loads(engine.public_documents()[0].render())["keys"]  # type: ignore[attr-defined]
        ring = json.loads((tmp_path / "jwt-keys" / "ring.json").read_text())
        assert ring["current"]["kid"] == key["kid"] and ring["current"]["key"].startswith("pkcs11:jwt-")
        assert not list((tmp_path / "jwt-keys").glob("*.pem"))
    finally:
        custody.close()
    plain = init_config(tmp_path / "plain" / "broker.toml")  # without a token: a key folder, as before
    plain_section = load_config(plain.path).engines["jwt"].settings
    assert plain_section.options["keys"] == "jwt-keys"
    assert not build_engine("jwt", plain_section).blocking_io  # file keys: issued on the event loop


def test_the_ssh_ca_key_in_the_token_signs_certificates_openssh_accepts(token_keys, tmp_path: Path) -> None:
    label = f"ssh-ca-{uuid.uuid4().hex[:8]}"
    custody = open_custody(KeySettings(custody=HSM, token=token_keys), b"")
    try:
        settings = EngineSettings(name="ssh", signing_keys=CustodyKeys(custody), options={
            "ca_key": f"pkcs11:{label}", "krl_file": str(tmp_path / "revoked.krl")})
        engine = build_engine("ssh", settings)
        issued = engine.issue(IssueRequest(
            lease_id="lse_1", agent="agent-a", task_id="tsk_1", task_name="t",
            scopes=("ssh:principal:deploy",), ttl_seconds=60, expires_at=time.time() + 60,
            public_key=SshKeys().new_public_key()))
        certificate = serialization.load_ssh_public_identity(issued.secret.encode())
        assert isinstance(certificate, serialization.SSHCertificate)
        certificate.verify_cert_signature()  # made by the token (CKM_EDDSA), checked by cryptography
        public_line = (tmp_path / f"{label}.pub").read_bytes()  # sshd's TrustedUserCAKeys
        signing_ca = certificate.signature_key().public_bytes(serialization.Encoding.OpenSSH,
                                                              serialization.PublicFormat.OpenSSH)
        assert public_line == signing_ca + b" jitsec-ssh-ca\n"
        (tmp_path / "cert.pub").write_text(issued.secret)
        listed = subprocess.run(["ssh-keygen", "-L", "-f", str(tmp_path / "cert.pub")], capture_output=True,
                                text=True, check=True).stdout
        assert "Signing CA: ED25519" in listed and "deploy" in listed
        again = build_engine("ssh", settings)  # a restart finds the same pair
        assert again.ca_public_key == engine.ca_public_key  # type: ignore[attr-defined]
        pkcs11 = custody.session.pkcs11  # type: ignore[attr-defined]
        private = private_half(custody, label)
        assert private[pkcs11.Attribute.SENSITIVE] and not private[pkcs11.Attribute.EXTRACTABLE]
        with pytest.raises(pkcs11.exceptions.AttributeSensitive):
            private[pkcs11.Attribute.VALUE]
    finally:
        custody.close()


def test_an_ed25519_token_key_signs_what_its_jwk_verifies_and_nothing_else(token_keys) -> None:
    custody = open_custody(KeySettings(custody=HSM, token=token_keys), b"")
    try:
        keys, reference = CustodyKeys(custody), f"pkcs11:ed-{uuid.uuid4().hex[:8]}"
        signer = keys.create(reference, "EdDSA")
        jwk = keys.open(reference, "EdDSA").public_jwk()
        assert jwk == signer.public_jwk() and jwk["kty"] == "OKP" and "d" not in jwk
        public = jwt.PyJWK(jwk).key
        signature = signer.sign(b"certificate body")
        public.verify(signature, b"certificate body")
        with pytest.raises(InvalidSignature):
            public.verify(signature, b"certificate body!")
        with pytest.raises(CustodyError, match="no EC key pair"):  # an Ed25519 pair is no ES256 key
            keys.open(reference)
        with pytest.raises(CustodyError, match="no RS256 keys in a token"):
            keys.create("pkcs11:rsa", "RS256")
        keys.destroy(reference)
        assert not keys.exists(reference)
    finally:
        custody.close()
