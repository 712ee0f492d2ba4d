"""The fixed registry of checksum validators a rule may name.

A pack names a validator by string; it can never name code to import. A rule with a validator is
STRUCTURAL confidence when the check holds, and a string of the right shape with a wrong checksum is
not a finding at all.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping
from types import MappingProxyType

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


VALIDATORS: Mapping[str, Validator] = MappingProxyType(
    {
        "broker-crc32": is_broker_credential,
        "github-crc32": _prefixed_crc32(("ghp", "gho", "ghu", "ghs", "ghr")),
        "npm-crc32": _prefixed_crc32(("npm",)),
    }
)

# Validators whose format is the broker's: findings carry the SHA-256 the broker looks leases up by.
BROKER_VALIDATORS = frozenset({"broker-crc32"})
