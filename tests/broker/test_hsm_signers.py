"""ES256 signers, one per custody, held to the same contract: a signature made through ``sign``
verifies with ``cryptography`` against nothing but the published JWK, and fails for another message."""

from __future__ import annotations

import base64
import hashlib
import json
import stat
import uuid
from collections.abc import Iterator

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from jitsec.broker.custody.base import CustodyError, file_custody
from jitsec.broker.custody.opening import open_custody
from jitsec.broker.custody.pkcs11_token import create_token_keys, open_session
from jitsec.broker.custody.settings import PIN_ENV, KeySettings, TokenSettings
from jitsec.broker.custody.signers import FileSigner, TokenSigner, open_signer
from jitsec.broker.signing import Signer


def _int(value: str) -> int:
    return int.from_bytes(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)), "big")


def verify_with_jwk(jwk: dict[str, str], message: bytes, signature: bytes) -> None:
    """Raises InvalidSignature unless ``signature`` (raw r || s) is ES256 over ``message`` by ``jwk``."""
    assert jwk["kty"] == "EC" and jwk["crv"] == "P-256" and jwk["alg"] == "ES256" and len(signature) == 64
    public = ec.EllipticCurvePublicNumbers(_int(jwk["x"]), _int(jwk["y"]), ec.SECP256R1()).public_key()
    der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
    public.verify(der, message, ec.ECDSA(hashes.SHA256()))


@pytest.fixture(params=["file", "token"])
def signer(request, tmp_path, softhsm) -> Iterator[Signer]:
    if request.param == "file":
        yield FileSigner.create(tmp_path / "signing.pem")
        return
    session = open_session(TokenSettings(module=softhsm.module, token=softhsm.token), softhsm.pin)
    try:
        yield TokenSigner.create(session, f"jwt-{uuid.uuid4().hex[:8]}")
    finally:
        session.close()


def test_a_signature_verifies_with_the_public_jwk_only(signer: Signer) -> None:
    assert isinstance(signer, Signer) and signer.algorithm == "ES256"
    jwk = signer.public_jwk()
    assert jwk["kid"] == signer.key_id and jwk["use"] == "sig" and "d" not in jwk
    for message in (b"", b"header.payload", bytes(range(256)) * 40):
        signature = signer.sign(message)
        verify_with_jwk(jwk, message, signature)
        with pytest.raises(InvalidSignature):
            verify_with_jwk(jwk, message + b"x", signature)


def test_the_key_id_is_the_rfc7638_thumbprint(signer: Signer) -> None:
    jwk = signer.public_jwk()
    members = json.dumps({k: jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"), sort_keys=True)
    expected = base64.urlsafe_b64encode(hashlib.sha256(members.encode()).digest()).rstrip(b"=").decode()
    assert signer.key_id == expected


def test_a_file_key_is_private_and_reloads_as_the_same_key(tmp_path) -> None:
    created = FileSigner.create(tmp_path / "k.pem")
    assert stat.S_IMODE((tmp_path / "k.pem").stat().st_mode) == 0o600
    again = FileSigner.load(tmp_path / "k.pem")
    assert again.key_id == created.key_id
    verify_with_jwk(created.public_jwk(), b"m", again.sign(b"m"))
    with pytest.raises(CustodyError, match="exists already"):
        FileSigner.create(tmp_path / "k.pem")
    (tmp_path / "k.pem").chmod(0o644)
    with pytest.raises(CustodyError, match="readable by others"):
        FileSigner.load(tmp_path / "k.pem")


def test_a_token_key_is_found_again_by_label_and_cannot_be_read_out(softhsm) -> None:
    session = open_session(TokenSettings(module=softhsm.module, token=softhsm.token), softhsm.pin)
    try:
        label = f"jwt-{uuid.uuid4().hex[:8]}"
        created = TokenSigner.create(session, label)
        found = TokenSigner.load(session, label)
        assert found.key_id == created.key_id
        verify_with_jwk(created.public_jwk(), b"m", found.sign(b"m"))
        pkcs11 = session.pkcs11
        private_key = pkcs11.ObjectClass.PRIVATE_KEY
        private = session.run(lambda raw: raw.get_key(object_class=private_key, label=label))
        assert not private[pkcs11.Attribute.EXTRACTABLE]
        with pytest.raises(pkcs11.exceptions.AttributeSensitive):
            private[pkcs11.Attribute.VALUE]
        with pytest.raises(CustodyError, match="exist already"):
            TokenSigner.create(session, label)
        with pytest.raises(CustodyError, match="no EC key pair labelled 'absent'"):
            TokenSigner.load(session, "absent")
    finally:
        session.close()


def test_an_engine_option_names_a_signer_in_either_custody(tmp_path, softhsm, monkeypatch) -> None:
    monkeypatch.setenv(PIN_ENV, softhsm.pin)
    tag = uuid.uuid4().hex[:8]
    settings = TokenSettings(module=softhsm.module, token=softhsm.token, audit_key_label=f"a-{tag}",
                             anchor_key_label=f"b-{tag}", kek_label=f"k-{tag}")
    create_token_keys(settings, softhsm.pin).close()
    custody = open_custody(KeySettings(custody="pkcs11", token=settings), b"")
    try:
        made = TokenSigner.create(custody.session, f"jwt-{tag}")  # type: ignore[arg-type]
        assert open_signer(custody, f"pkcs11:jwt-{tag}").key_id == made.key_id
        with pytest.raises(CustodyError, match="no EC key pair"):
            open_signer(custody, "pkcs11:absent")
    finally:
        custody.close()
    on_disk = FileSigner.create(tmp_path / "jwt.pem")
    assert open_signer(file_custody(b"k" * 32), "jwt.pem", base_dir=tmp_path).key_id == on_disk.key_id
    with pytest.raises(CustodyError, match="names none"):
        open_signer(file_custody(b"k" * 32), "pkcs11:jwt")
