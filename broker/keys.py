"""Principal keys: generated once, shown once, stored only as SHA-256 (they carry ~238 random bits,
so an unkeyed hash is safe). Same self-identifying format as every broker credential (``jitk_``)."""

from __future__ import annotations

import secrets

from jitsec.kernel.credential_format import CredentialKind, mint, sha256_fingerprint


def new_principal_key() -> str:
    return mint(CredentialKind.PRINCIPAL_KEY)


def key_hash(key: str) -> str:
    return sha256_fingerprint(key)


def new_audit_key() -> str:
    """32 random bytes, hex: the HMAC key of the audit chain."""
    return secrets.token_hex(32)
