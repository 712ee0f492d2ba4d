"""The broker-issued credential format: ``PREFIX BODY CHECK``.

Shared by the broker (which mints) and the scanner (which recognises), so that neither imports the
other. Every minted credential carries a kind prefix, 40 base62 characters from a CSPRNG (about 238
random bits) and a 6-character base62 CRC-32 of the body, so a leak is recognisable offline with odds
of a false positive of 1 in 2**32 per well-shaped string.
"""

from __future__ import annotations

import hashlib
import secrets
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from jitsec.kernel.lazy_regex import LazyPattern

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
BODY_LENGTH = 40
CHECK_LENGTH = 6

# Prefixes are lowercase ASCII letters starting with "jit", then one underscore.
_SHAPE = LazyPattern(r"(?P<prefix>jit[a-z]*_)(?P<body>[0-9A-Za-z]{40})(?P<check>[0-9A-Za-z]{6})")


class CredentialKind(Enum):
    """The prefix says what a credential is; a new engine gets a new prefix of the same shape."""

    ENGINE_TOKEN = "jit_"  # a token-engine secret leased to an agent for one task
    TASK_TOKEN = "jitt_"  # the task's own bearer token, held by the agent for the task's life
    POSTGRES_PASSWORD = "jitpg_"  # the password of a per-lease PostgreSQL role
    TASK_GRANT = "jitg_"  # a single-use grant an orchestrator hands to an agent to redeem once
    PRINCIPAL_KEY = "jitk_"  # an API key of a broker principal (orchestrator, scanner, resource, admin)
    KAFKA_PASSWORD = "jitkf_"  # the SCRAM-SHA-512 password of a per-lease Kafka user

    @property
    def prefix(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class ParsedCredential:
    prefix: str
    body: str
    check: str

    @property
    def kind(self) -> CredentialKind | None:
        try:
            return CredentialKind(self.prefix)
        except ValueError:
            return None


def encode_base62(value: int, width: int) -> str:
    """Most significant digit first, left-padded with ``0`` to ``width``."""
    if value < 0:
        raise ValueError("base62 encodes non-negative integers only")
    digits: list[str] = []
    while value:
        value, rest = divmod(value, 62)
        digits.append(ALPHABET[rest])
    encoded = "".join(reversed(digits)) or "0"
    if len(encoded) > width:
        raise ValueError(f"value needs {len(encoded)} base62 digits, more than {width}")
    return encoded.rjust(width, "0")


def checksum(body: str) -> str:
    """CRC-32 of the ASCII body (as zlib computes it), in 6 base62 digits."""
    return encode_base62(zlib.crc32(body.encode("ascii")), CHECK_LENGTH)


def mint(kind: CredentialKind | str, randbelow: Callable[[int], int] = secrets.randbelow) -> str:
    """A fresh credential of ``kind``; ``randbelow`` is injectable for tests, a CSPRNG by default."""
    prefix = kind.prefix if isinstance(kind, CredentialKind) else kind
    if not _SHAPE.fullmatch(prefix + "0" * (BODY_LENGTH + CHECK_LENGTH)):
        raise ValueError("a credential prefix is 'jit', optional lowercase letters, then '_'")
    body = "".join(ALPHABET[randbelow(62)] for _ in range(BODY_LENGTH))
    return prefix + body + checksum(body)


def parse(candidate: str) -> ParsedCredential | None:
    """The parts of a well-shaped credential whose checksum holds, else None."""
    match = _SHAPE.fullmatch(candidate)
    if match is None:
        return None
    body, check = match["body"], match["check"]
    if checksum(body) != check:
        return None
    return ParsedCredential(prefix=match["prefix"], body=body, check=check)


def is_valid(candidate: str) -> bool:
    return parse(candidate) is not None


def sha256_fingerprint(secret: str | bytes) -> str:
    """The fingerprint a leak report carries: hex SHA-256 of the secret's bytes.

    Unkeyed on purpose: broker-issued secrets carry ~238 random bits, so the hash reveals nothing,
    and both sides can compute it without sharing a key. It is the report's proof that the reporter
    saw the secret, so it is never published: the broker lists live leases by ``live_lookup`` of it
    instead. Never use it for third-party secrets in reports (see the keyed fingerprint in the
    scanner).
    """
    data = secret.encode("utf-8") if isinstance(secret, str) else secret
    return hashlib.sha256(data).hexdigest()


LOOKUP_DOMAIN = b"jitsec live lookup v1\0"


def live_lookup(fingerprint: str) -> str:
    """What ``GET /v1/fingerprints`` publishes for a live lease: a hash of its ``sha256_fingerprint``.

    A scanner that found a secret computes the fingerprint, then this, to ask "is it live?"; a holder
    of the scanner key who only reads the published list cannot go back from a lookup to the
    fingerprint a leak report must carry, so the list alone revokes nothing.
    """
    return hashlib.sha256(LOOKUP_DOMAIN + bytes.fromhex(fingerprint)).hexdigest()


PUBLIC_KEY_DOMAIN = b"jitsec public key v1\0"


def public_key_fingerprint(spki_der: bytes) -> str:
    """The ``sha256_fingerprint`` of a credential the agent holds as a private key (an X.509 client
    certificate's key): a hash of its DER SubjectPublicKeyInfo. The broker computes it from the CSR it
    certified; a scanner computes it from a leaked private key (the public half follows from it), so
    both name the same lease without the broker ever holding the private key."""
    return sha256_fingerprint(PUBLIC_KEY_DOMAIN + spki_der)
