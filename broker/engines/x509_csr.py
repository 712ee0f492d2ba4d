"""What the broker accepts as an agent's certificate request: a PEM CSR it checks before signing.

The agent chooses only its key. The CSR must carry a valid self-signature (proof that the requester
holds the private key), a key of an accepted type and size, and no extension requests: names, key
usages and CA powers are the broker's to set, and a CSR asking for any of them is refused rather than
silently trimmed. The subject it names is ignored (the broker writes its own).
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jitsec.broker.errors import BadRequest

from jitsec.kernel.credential_format import public_key_fingerprint

MAX_CSR_CHARS = 16_384
EC_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384"}
MIN_RSA_BITS = 2048
MAX_RSA_BITS = 8192

CertifiableKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey


@dataclass(frozen=True, slots=True)
class CheckedRequest:
    """A CSR that passed every check: its key and that key's leak fingerprint."""

    public_key: CertifiableKey
    fingerprint: str


def _refuse(reason: str) -> BadRequest:
    return BadRequest(f"x509: {reason}", code="invalid_public_key")


def check_csr(pem: str) -> CheckedRequest:
    """Parse and check one CSR; raises ``BadRequest`` (422) naming the problem."""
    if not pem:
        raise _refuse("send a PEM certificate signing request in public_key (the SDK makes one)")
    if len(pem) > MAX_CSR_CHARS:
        raise _refuse(f"the certificate signing request is longer than {MAX_CSR_CHARS} characters")
    try:
        csr = x509.load_pem_x509_csr(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise _refuse("public_key is not a PEM certificate signing request") from None
    if not csr.is_signature_valid:
        raise _refuse("the certificate signing request's signature does not verify")
    try:
        requested = [extension.oid.dotted_string for extension in csr.extensions]
    except (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType):
        raise _refuse("the certificate signing request's extensions cannot be read") from None
    if requested:
        raise _refuse(
            "the certificate signing request asks for extensions (" + ", ".join(requested) + "); names, "
            "key usages and CA powers are set by the broker: send a request without extensions"
        )
    key = csr.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in EC_CURVES:
            raise _refuse(f"EC keys must be on {' or '.join(EC_CURVES.values())}, not {key.curve.name}")
    elif isinstance(key, rsa.RSAPublicKey):
        if not MIN_RSA_BITS <= key.key_size <= MAX_RSA_BITS:
            raise _refuse(f"RSA keys must have {MIN_RSA_BITS} to {MAX_RSA_BITS} bits, not {key.key_size}")
    else:
        raise _refuse("the key must be EC (P-256, P-384) or RSA")
    spki = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return CheckedRequest(public_key=key, fingerprint=public_key_fingerprint(spki))
