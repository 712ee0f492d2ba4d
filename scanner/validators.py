"""The fixed registry of validators (checksums, structure) a rule may name.

A pack names a validator by string; it can never name code to import. A rule with a validator is
STRUCTURAL confidence when the check holds, and a string of the right shape with a wrong checksum is
not a finding at all.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
import zlib
from collections.abc import Callable, Mapping
from types import MappingProxyType

import regex

from jitsec.kernel.credential_format import ALPHABET, parse

Validator = Callable[[str], bool]


def _base62_value(text: str) -> int | None:
    value = 0
    for char in text:
        digit = ALPHABET.find(char)
        if digit < 0:
            return None
        value = value * 62 + digit
    return value


def is_broker_credential(secret: str) -> bool:
    """jitsec's own ``PREFIX BODY CHECK`` format (see ``jitsec.kernel.credential_format``)."""
    return parse(secret) is not None


def _prefixed_crc32(prefixes: tuple[str, ...]) -> Validator:
    """GitHub-style tokens: ``prefix_`` + 30 base62 characters + the CRC-32 of those 30 characters as
    6 base62 digits (alphabet ``0-9A-Za-z``, most significant first, zero-padded). npm adopted the
    same layout with ``npm_``."""

    def check(secret: str) -> bool:
        prefix, sep, rest = secret.partition("_")
        if not sep or prefix not in prefixes or len(rest) != 36:
            return False
        random_part, check_part = rest[:30], rest[30:]
        expected = _base62_value(check_part)
        if expected is None or _base62_value(random_part) is None:
            return False
        return zlib.crc32(random_part.encode("ascii")) == expected

    return check


_LEASE_ID = regex.compile(r"lse_[0-9a-f]{24}")
_ACCESS_TOKEN_TYPE = "at+jwt"


def _b64url_json(part: str) -> object:
    try:
        return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (ValueError, UnicodeDecodeError):
        return None


def is_broker_jwt(secret: str) -> bool:
    """A JWT access token of the broker's jwt engine: header ``typ`` ``at+jwt`` with a ``kid``, claims
    whose ``jti`` is a lease id (``lse_`` + 24 hex) with ``iss`` and ``exp``. The signature is not
    checked (the scanner holds no keys): the broker says whether the lease is its own."""
    parts = secret.split(".")
    if len(parts) != 3 or not parts[2]:
        return False
    header, claims = _b64url_json(parts[0]), _b64url_json(parts[1])
    if not isinstance(header, dict) or not isinstance(claims, dict):
        return False
    return (header.get("typ") == _ACCESS_TOKEN_TYPE and isinstance(header.get("kid"), str)
            and isinstance(claims.get("jti"), str) and _LEASE_ID.fullmatch(claims["jti"]) is not None
            and isinstance(claims.get("iss"), str) and isinstance(claims.get("exp"), int))
_ED25519_CERT = b"ssh-ed25519-cert-v01@openssh.com"
BROKER_SSH_KEY_ID = b"jitsec agent="


def _ssh_strings(blob: bytes, count: int, start: int = 0) -> tuple[list[bytes], int] | None:
    """``count`` SSH wire strings from ``start``, and where they end; None when truncated."""
    values = []
    for _ in range(count):
        if start + 4 > len(blob):
            return None
        (length,) = struct.unpack_from(">I", blob, start)
        start += 4
        if start + length > len(blob):
            return None
        values.append(blob[start:start + length])
        start += length
    return values, start


def is_broker_ssh_certificate(secret: str) -> bool:
    """An OpenSSH Ed25519 user certificate the jitsec broker signed: its key id (PROTOCOL.certkeys:
    type, nonce, key, serial, cert type, key id) starts with ``jitsec agent=``. A forged one only
    makes the broker answer "unknown"; the signature is the sshd's business."""
    _, _, encoded = secret.partition(" ")
    try:
        blob = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return False
    head = _ssh_strings(blob, 3)  # type, nonce, public key
    if head is None or head[0][0] != _ED25519_CERT:
        return False
    key_id = _ssh_strings(blob, 1, head[1] + 8 + 4)  # after serial (uint64) and cert type (uint32)
    return key_id is not None and key_id[0][0].startswith(BROKER_SSH_KEY_ID)


VALIDATORS: Mapping[str, Validator] = MappingProxyType(
    {
        "broker-crc32": is_broker_credential,
        "broker-ssh-certificate": is_broker_ssh_certificate,
        "github-crc32": _prefixed_crc32(("ghp", "gho", "ghu", "ghs", "ghr")),
        "npm-crc32": _prefixed_crc32(("npm",)),
        "broker-jwt": is_broker_jwt,
    }
)

# Validators whose format is the broker's: findings carry the SHA-256 the broker looks leases up by.
BROKER_VALIDATORS = frozenset({"broker-crc32", "broker-jwt", "broker-ssh-certificate"})
