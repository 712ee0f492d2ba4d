"""The SSH wire encoding (RFC 4251 §5) and the OpenSSH user certificate (PROTOCOL.certkeys).

The certificate is assembled here rather than by a library so that its signature can come from any
``Signer`` (a key file today, an HSM tomorrow): the CA's private key never has to be an object in this
process. Only Ed25519 CA keys are supported (``ssh-ed25519`` signatures are the raw 64 bytes a JOSE
``EdDSA`` signer returns). Pure functions, no I/O.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

ED25519 = "ssh-ed25519"
ED25519_CERT = "ssh-ed25519-cert-v01@openssh.com"
USER_CERT = 1
ED25519_KEY_BYTES = 32
NONCE_BYTES = 32


def ssh_string(data: bytes | str) -> bytes:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return struct.pack(">I", len(raw)) + raw


def ssh_uint64(value: int) -> bytes:
    return struct.pack(">Q", value)


def ed25519_public_blob(raw: bytes) -> bytes:
    """The wire form of an Ed25519 public key (what ``ssh-ed25519 AAAA...`` carries in base64)."""
    if len(raw) != ED25519_KEY_BYTES:
        raise ValueError("an Ed25519 public key is 32 bytes")
    return ssh_string(ED25519) + ssh_string(raw)


def public_key_line(blob: bytes, key_type: str = ED25519, comment: str = "") -> str:
    """``<type> <base64 blob>[ <comment>]``: the one-line OpenSSH form."""
    line = f"{key_type} {base64.b64encode(blob).decode('ascii')}"
    return f"{line} {comment}" if comment else line


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.position = data, 0

    def string(self) -> bytes:
        if self.position + 4 > len(self.data):
            raise ValueError("truncated SSH string")
        (length,) = struct.unpack_from(">I", self.data, self.position)
        start = self.position + 4
        if start + length > len(self.data):
            raise ValueError("truncated SSH string")
        self.position = start + length
        return self.data[start:self.position]


def parse_ed25519_public_key(line: str) -> bytes:
    """The 32 raw bytes of an ``ssh-ed25519 AAAA... [comment]`` line; ValueError when it is anything
    else (another key type, a certificate, bad base64, a blob whose type disagrees with the line's)."""
    parts = line.strip().split()
    if len(parts) < 2 or parts[0] != ED25519:
        raise ValueError(f"the public key must be an OpenSSH '{ED25519} AAAA...' line")
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except ValueError:
        raise ValueError("the public key's base64 is invalid") from None
    reader = _Reader(blob)
    if reader.string() != ED25519.encode():
        raise ValueError("the public key's blob is not an Ed25519 key")
    raw = reader.string()
    if len(raw) != ED25519_KEY_BYTES or reader.position != len(blob):
        raise ValueError("the public key's blob is malformed")
    return raw


@dataclass(frozen=True, slots=True)
class UserCertificate:
    """What a user certificate states. ``critical_options`` and ``extensions`` map a name to its value
    ("" for a flag); they are written sorted by name, as OpenSSH requires."""

    public_key: bytes  # the agent's raw Ed25519 key
    serial: int
    key_id: str
    principals: tuple[str, ...]
    valid_after: int
    valid_before: int
    critical_options: Mapping[str, str] = field(default_factory=dict)
    extensions: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0 < self.serial < 2**64:
            raise ValueError("serial must be in 1 .. 2**64-1")
        if not 0 <= self.valid_after < self.valid_before < 2**64:
            raise ValueError("need 0 <= valid_after < valid_before")
        if not self.principals:
            raise ValueError("a user certificate names at least one principal")


def _options(items: Mapping[str, str]) -> bytes:
    """Name/value pairs; a value is itself an SSH string inside the data string, a flag's data empty."""
    return b"".join(
        ssh_string(name) + (ssh_string(ssh_string(value)) if value else ssh_string(b""))
        for name, value in sorted(items.items())
    )


def sign_user_certificate(
    certificate: UserCertificate, ca_public_blob: bytes, sign: Callable[[bytes], bytes], nonce: bytes
) -> bytes:
    """The certificate's wire blob, signed by ``sign`` (an Ed25519 signer returning 64 raw bytes)."""
    if len(nonce) < 16:
        raise ValueError("the nonce must be at least 16 bytes")
    body = b"".join((
        ssh_string(ED25519_CERT),
        ssh_string(nonce),
        ssh_string(certificate.public_key),
        ssh_uint64(certificate.serial),
        struct.pack(">I", USER_CERT),
        ssh_string(certificate.key_id),
        ssh_string(b"".join(ssh_string(p) for p in certificate.principals)),
        ssh_uint64(certificate.valid_after),
        ssh_uint64(certificate.valid_before),
        ssh_string(_options(certificate.critical_options)),
        ssh_string(_options(certificate.extensions)),
        ssh_string(b""),  # reserved
        ssh_string(ca_public_blob),
    ))
    signature = sign(body)
    if len(signature) != 64:
        raise ValueError("the CA signer did not return a 64-byte Ed25519 signature")
    return body + ssh_string(ssh_string(ED25519) + ssh_string(signature))


def certificate_line(blob: bytes) -> str:
    """The certificate as ``ssh`` reads it from ``id_ed25519-cert.pub`` (no comment: the line is also
    the lease's fingerprinted secret, so it must be the same wherever it is found)."""
    return public_key_line(blob, ED25519_CERT)
