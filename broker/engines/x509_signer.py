"""Signing X.509 objects through a ``Signer``, and the file-backed P-256 signer of the broker's CA.

``cryptography``'s builders sign only with a private key object in this process. To sign through a
``Signer`` (a key file today, an HSM when configured) the builder first signs with a throwaway P-256
key of this process; the to-be-signed bytes do not depend on the signing key (issuer, serial, validity
and extensions are all set by the builder, the signature algorithm is ECDSA with SHA-256 either way),
so they are taken from that draft, signed by the ``Signer``, and assembled again in DER.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from jitsec.broker.errors import ConfigError
from jitsec.broker.signing import Signer

ES256 = "ES256"
_ECDSA_WITH_SHA256 = bytes.fromhex("300a06082a8648ce3d040302")  # AlgorithmIdentifier, no parameters
_P256_COORDINATE = 32


@functools.cache
def _draft() -> ec.EllipticCurvePrivateKey:
    """The throwaway key drafts are signed with (never published; its signatures are discarded)."""
    return ec.generate_private_key(ec.SECP256R1())


def _length(size: int) -> bytes:
    if size < 0x80:
        return bytes([size])
    encoded = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(encoded)]) + encoded


def _tlv(tag: int, body: bytes) -> bytes:
    return bytes([tag]) + _length(len(body)) + body


def _signed(tbs: bytes, signer: Signer) -> bytes:
    """``SEQUENCE { tbs, ecdsa-with-SHA256, BIT STRING signature }`` in DER."""
    if signer.algorithm != ES256:
        raise ConfigError(f"the X.509 CA needs an {ES256} (P-256) signing key, not {signer.algorithm}")
    raw = signer.sign(tbs)
    r = int.from_bytes(raw[:_P256_COORDINATE], "big")
    s = int.from_bytes(raw[_P256_COORDINATE:], "big")
    signature = encode_dss_signature(r, s)
    return _tlv(0x30, tbs + _ECDSA_WITH_SHA256 + _tlv(0x03, b"\x00" + signature))


def sign_certificate(builder: x509.CertificateBuilder, signer: Signer) -> x509.Certificate:
    draft = builder.sign(_draft(), hashes.SHA256())
    return x509.load_der_x509_certificate(_signed(draft.tbs_certificate_bytes, signer))


def sign_crl(builder: x509.CertificateRevocationListBuilder,
             signer: Signer) -> x509.CertificateRevocationList:
    draft = builder.sign(_draft(), hashes.SHA256())
    return x509.load_der_x509_crl(_signed(draft.tbs_certlist_bytes, signer))


class EcKeyFileSigner:
    """A P-256 key in a PEM file (mode 0600), created on first use: the CA's ``Signer`` when no HSM
    holds the key. ``public_key`` is what certificates name as their issuer's key."""

    algorithm = ES256

    def __init__(self, path: Path) -> None:
        self._key = _load_or_create(path)
        self.public_key = self._key.public_key()
        spki = self.public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.key_id = base64.urlsafe_b64encode(hashlib.sha256(spki).digest()[:12]).decode().rstrip("=")

    def __repr__(self) -> str:
        return f"EcKeyFileSigner(key_id={self.key_id!r})"

    def sign(self, message: bytes) -> bytes:
        r, s = decode_dss_signature(self._key.sign(message, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(_P256_COORDINATE, "big") + s.to_bytes(_P256_COORDINATE, "big")

    def public_jwk(self) -> dict[str, str]:
        numbers = self.public_key.public_numbers()

        def b64(value: int) -> str:
            return base64.urlsafe_b64encode(value.to_bytes(_P256_COORDINATE, "big")).decode().rstrip("=")

        return {"kty": "EC", "crv": "P-256", "x": b64(numbers.x), "y": b64(numbers.y),
                "kid": self.key_id, "alg": ES256, "use": "sig"}


def _load_or_create(path: Path) -> ec.EllipticCurvePrivateKey:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return _create(path)
    except OSError as error:
        raise ConfigError(f"cannot read the X.509 CA key {path}: {error.strerror}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise ConfigError(f"{path} is not an unencrypted PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ConfigError(f"{path}: the X.509 CA key must be an EC P-256 key")
    return key


def _create(path: Path) -> ec.EllipticCurvePrivateKey:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return _load_or_create(path)
    except OSError as error:
        raise ConfigError(f"cannot create the X.509 CA key {path}: {error.strerror}") from None
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)
    return key
