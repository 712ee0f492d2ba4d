"""The leak fingerprint of a leaked private key: the hash of its public half (``public_key_fingerprint``).

A broker that certified a key (an X.509 client certificate) never saw the private key, so it names the
lease by the public key's hash; the scanner derives the same value from a PEM private key it found.
Parsing needs ``cryptography``, which a scanning-only install may lack: then no fingerprint is
derived and the finding stays an ordinary key-material alert.
"""

from __future__ import annotations

from jitsec.kernel.credential_format import public_key_fingerprint

_MARKERS = tuple(f"-----BEGIN {kind}PRIVATE KEY-----" for kind in ("", "EC ", "RSA "))


def derived_fingerprint(secret: str) -> str | None:
    """The public-key fingerprint of an unencrypted PEM private key, else None (never raises)."""
    if not secret.startswith(_MARKERS):
        return None
    try:
        from cryptography.hazmat.primitives import serialization  # noqa: PLC0415 - optional dependency
    except ImportError:
        return None
    try:
        key = serialization.load_pem_private_key(secret.encode("ascii"), password=None)
        spki = key.public_key().public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
    except Exception:  # malformed, encrypted, an unsupported algorithm: not a key we can name
        return None
    return public_key_fingerprint(spki)
