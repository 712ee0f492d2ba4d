"""The SSH certificate authority's key: an Ed25519 ``Signer`` kept in a file (mode 0600).

The file is created on first use (or by ``jitsec broker init``) in OpenSSH's private key format, so
``ssh-keygen -y -f <file>`` prints its public half; that half is also written next to it as
``<file>.pub``, the line a server's ``TrustedUserCAKeys`` needs. Creation is atomic (a hard link of a
finished temporary file), so two processes starting at once end with one key. The engine only sees
the ``Signer`` protocol, so an HSM-held key replaces this class without touching the engine (``ca_key =
"pkcs11:LABEL"``: an Ed25519 pair in the broker's token; its public line is written by
``write_public_line``).
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jitsec.broker.engines.ssh_wire import ed25519_public_blob, public_key_line
from jitsec.broker.signing import Signer


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class FileEd25519Signer:
    """An Ed25519 key in a file. ``key_id`` is OpenSSH's ``SHA256:...`` fingerprint of its public key."""

    algorithm = "EdDSA"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._key = _load_or_create(path)
        self._public = self._key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        digest = hashlib.sha256(ed25519_public_blob(self._public)).digest()
        self.key_id = "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")

    def __repr__(self) -> str:
        return f"FileEd25519Signer({str(self.path)!r}, key_id={self.key_id!r})"

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)

    def public_jwk(self) -> dict[str, str]:
        return {"kty": "OKP", "crv": "Ed25519", "x": _b64url(self._public), "kid": self.key_id,
                "alg": self.algorithm, "use": "sig"}


def ed25519_public_of(signer: Signer) -> bytes:
    """The raw public key of an Ed25519 signer, read from its JWK (the one view every Signer gives)."""
    jwk = signer.public_jwk()
    if signer.algorithm != "EdDSA" or jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise ValueError("the SSH CA needs an Ed25519 (EdDSA) key")
    raw = base64.urlsafe_b64decode(jwk["x"] + "=" * (-len(jwk["x"]) % 4))
    if len(raw) != 32:
        raise ValueError("the CA key's JWK holds no 32-byte Ed25519 key")
    return raw


def _load_or_create(path: Path) -> Ed25519PrivateKey:
    if not path.exists():
        _create(path)
    key = serialization.load_ssh_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} does not hold an Ed25519 key")
    _write_public(path, key)
    return key


def _create(path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                            serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(handle, pem)
        os.fsync(handle)
    finally:
        os.close(handle)
    try:
        os.link(temporary, path)  # fails if another process made the key first: then use theirs
    except FileExistsError:
        pass
    finally:
        temporary.unlink()


def _write_public(path: Path, key: Ed25519PrivateKey) -> None:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    write_public_line(path.with_name(path.name + ".pub"), raw)


def write_public_line(public: Path, raw: bytes) -> None:
    """Write the CA's ``ssh-ed25519 ... jitsec-ssh-ca`` line (sshd's ``TrustedUserCAKeys``) at ``public``
    (mode 0644, replaced atomically, left alone when it already holds that line)."""
    line = public_key_line(ed25519_public_blob(raw), comment="jitsec-ssh-ca") + "\n"
    public.parent.mkdir(parents=True, exist_ok=True)
    if not public.exists() or public.read_text("utf-8", "replace") != line:
        temporary = public.with_name(f".{public.name}.{os.getpid()}.tmp")
        temporary.write_text(line, "utf-8")
        os.chmod(temporary, 0o644)
        os.replace(temporary, public)
