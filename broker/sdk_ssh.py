"""SSH certificates in the agent SDK: the key pair is made here, in memory, and only its public half
goes to the broker.

    with BrokerClient(url).task(task_id, grant) as task:
        ssh = ssh_certificate(task, ["ssh:principal:deploy"])
        identity = ssh.identity()            # a live certificate and its private key
        run_with(identity.certificate, identity.private_key)   # paramiko, asyncssh...
        key_path = identity.write(private_dir)                 # or files for the ``ssh`` binary

Each issue and each rotation makes a new Ed25519 key pair, so a rotated-away certificate and its key
are useless together with the new ones. ``identity()`` always answers with a live certificate (it
rotates past 80% of the lifetime, as every ``Secret`` does) and the private key it certifies.
``write`` is the one place key material touches a disk, and only when the caller asks for it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from jitsec.broker.client import AgentTask, Secret

from jitsec.kernel.redaction import preview

KEY_FILE = "id_ed25519"


def _raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


class SshKeys:
    """Makes key pairs and finds the one a certificate certifies; older pairs are dropped once a newer
    certificate is in use. Thread-safe."""

    def __init__(self) -> None:
        self._keys: dict[bytes, Ed25519PrivateKey] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SshKeys(held={len(self._keys)})"

    def new_public_key(self) -> str:
        key = Ed25519PrivateKey.generate()
        with self._lock:
            self._keys[_raw(key.public_key())] = key
        line = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                             serialization.PublicFormat.OpenSSH)
        return line.decode("ascii")

    def key_for(self, certificate: str) -> Ed25519PrivateKey:
        """The private key ``certificate`` (an OpenSSH certificate line) certifies."""
        parsed = serialization.load_ssh_public_identity(certificate.encode("ascii"))
        if not isinstance(parsed, serialization.SSHCertificate):
            raise ValueError("the broker's answer is not an OpenSSH certificate")
        public = parsed.public_key()
        if not isinstance(public, Ed25519PublicKey):
            raise ValueError("the certificate does not certify an Ed25519 key")
        raw = _raw(public)
        with self._lock:
            key = self._keys.get(raw)
            if key is None:
                raise ValueError("the certificate certifies a key this process did not make")
            self._keys = {raw: key}  # the previous pairs' certificates are rotated away
            return key

    def clear(self) -> None:
        with self._lock:
            self._keys.clear()


@dataclass(frozen=True, slots=True, repr=False)
class SshIdentity:
    """A certificate line and the private key it certifies; ``repr`` shows a preview of the first and
    nothing of the second (the certificate is the lease's fingerprinted secret)."""

    certificate: str
    private_key: Ed25519PrivateKey

    def __repr__(self) -> str:
        return f"SshIdentity(certificate={preview(self.certificate)})"

    def private_key_openssh(self) -> bytes:
        """The private key in OpenSSH's file format (unencrypted: keep it in memory or a private file)."""
        return self.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                              serialization.NoEncryption())

    def write(self, directory: str | Path) -> Path:
        """Write ``id_ed25519`` (0600) and ``id_ed25519-cert.pub`` into ``directory`` (made 0700) for
        ``ssh -i``; returns the key's path. Delete the directory when the task ends."""
        folder = Path(directory)
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        key_path = folder / KEY_FILE
        handle = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(handle, "wb") as stream:
            stream.write(self.private_key_openssh())
        (folder / f"{KEY_FILE}-cert.pub").write_text(self.certificate + "\n", "ascii")
        return key_path


class SshCertificate:
    """One ssh lease held by an agent: a ``Secret`` whose value is the certificate line."""

    def __init__(self, secret: Secret, keys: SshKeys) -> None:
        self.secret, self._keys = secret, keys

    def __repr__(self) -> str:
        return f"SshCertificate(lease_id={self.secret.lease_id!r})"

    @property
    def lease_id(self) -> str:
        return self.secret.lease_id

    def identity(self) -> SshIdentity:
        """The live certificate and its key; RuntimeError once the task completed (keys forgotten)."""
        try:
            certificate = self.secret.value  # rotates first when due: a new key pair, a new certificate
        except RuntimeError:
            self._keys.clear()  # the task completed: its private keys go with its certificates
            raise
        return SshIdentity(certificate=certificate, private_key=self._keys.key_for(certificate))

    def rotate(self, grace_seconds: float = 0) -> None:
        """A new key pair and certificate now; the old certificate dies after ``grace_seconds``."""
        self.secret.rotate(grace_seconds)


def ssh_certificate(task: AgentTask, scopes: Sequence[str], ttl_seconds: int | None = None, *,
                    engine: str = "ssh") -> SshCertificate:
    """Ask the broker's ``engine`` for a certificate of a key made here (``ssh:principal:NAME``...)."""
    keys = SshKeys()
    secret = task.secret(engine, scopes, ttl_seconds, new_public_key=keys.new_public_key)
    return SshCertificate(secret, keys)
