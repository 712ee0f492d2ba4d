"""The file-backed ``Signer``: an ECDSA P-256 key (JOSE ``ES256``) in a PKCS#8 PEM file of mode 0600.

The key id is the RFC 7638 thumbprint of the public key, so it is stable for the key's life and the
same wherever the key is loaded. Signing returns JOSE's raw ``r || s`` (RFC 7518 §3.4), not DER.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from jitsec.broker.errors import ConfigError

ES256 = "ES256"
_COORDINATE_BYTES = 32


def b64url(data: bytes) -> str:
    """Base64url without padding, as JOSE writes every binary value."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class FileSigner:
    """One ES256 key held in process memory. Thread-safe (``cryptography`` keys are immutable)."""

    algorithm = ES256

    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        if not isinstance(key.curve, ec.SECP256R1):
            raise ConfigError(f"an ES256 signing key must be on P-256, not {key.curve.name}")
        self._key = key
        self._jwk = public_jwk_of(key.public_key())
        self.key_id = self._jwk["kid"]

    def __repr__(self) -> str:
        return f"FileSigner(key_id={self.key_id!r}, algorithm={self.algorithm!r})"

    def sign(self, message: bytes) -> bytes:
        r, s = decode_dss_signature(self._key.sign(message, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(_COORDINATE_BYTES, "big") + s.to_bytes(_COORDINATE_BYTES, "big")

    def public_jwk(self) -> dict[str, str]:
        return dict(self._jwk)


def public_jwk_of(public: ec.EllipticCurvePublicKey) -> dict[str, str]:
    """The public key as a JWK with ``kid`` (RFC 7638 thumbprint), ``alg`` and ``use``."""
    numbers = public.public_numbers()
    members = {
        "crv": "P-256",
        "kty": "EC",
        "x": b64url(numbers.x.to_bytes(_COORDINATE_BYTES, "big")),
        "y": b64url(numbers.y.to_bytes(_COORDINATE_BYTES, "big")),
    }
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode("ascii")
    return {**members, "kid": b64url(hashlib.sha256(canonical).digest()), "alg": ES256, "use": "sig"}


def generate_key_file(path: Path) -> FileSigner:
    """Make a new P-256 key and write it to ``path`` (created with mode 0600; never overwritten)."""
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)
    return FileSigner(key)


def load_key_file(path: Path) -> FileSigner:
    """The signer for a PEM key file; a ``ConfigError`` naming the file (never its content) otherwise."""
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError:
        raise ConfigError(f"{path}: signing key file not found") from None
    except (ValueError, TypeError):
        raise ConfigError(f"{path}: not an unencrypted PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ConfigError(f"{path}: an ES256 signing key must be an EC P-256 key")
    return FileSigner(key)
