"""The agent side of the x509 engine: a private key made in memory, a CSR, and a client certificate.

    with BrokerClient(url).task(task_id, grant) as task:
        cert = task.client_certificate("x509", scopes=["x509:name:api.internal"])
        with httpx.Client(verify=cert.ssl_context(cafile="server-ca.pem")) as http:
            http.get("https://api.internal:8443/")

The key (EC P-256) never leaves this process: only its CSR is sent. Each certificate gets a new key,
rotation included (past 80% of the lease's life, or ``rotate()``). Python's ``ssl`` loads a key from a
file only, so ``ssl_context`` hands it over through an in-memory file (``memfd`` on Linux; elsewhere a
0600 temporary file removed at once).
"""

from __future__ import annotations

import os
import ssl
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec


class HeldSecret(Protocol):
    """What this module uses of ``broker.client.Secret`` (named here so it need not import the client)."""

    @property
    def lease_id(self) -> str: ...

    @property
    def expires_at(self) -> float: ...

    @property
    def details(self) -> Mapping[str, str]: ...

    @property
    def value(self) -> str: ...

    def rotate(self, grace_seconds: float = 0) -> None: ...

    def purge(self) -> None: ...


class SecretSource(Protocol):
    """What this module uses of ``broker.client.AgentTask``."""

    def secret(self, engine: str, scopes: Sequence[str], ttl_seconds: int | None = None, *,
               public_key: str | None = None,
               new_public_key: Callable[[], str] | None = None) -> HeldSecret: ...


KEPT_KEYS = 4  # the current key, and a few recent ones while a rotation is under way


def _spki(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


class KeyRing:
    """Makes a fresh key and CSR on each ``new_csr`` and finds the key of a certificate later."""

    def __init__(self) -> None:
        self._keys: dict[bytes, ec.EllipticCurvePrivateKey] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"KeyRing(keys={len(self._keys)})"

    def new_csr(self) -> str:
        key = ec.generate_private_key(ec.SECP256R1())
        # the broker writes the subject and every extension itself: the request carries only the key
        csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(key, hashes.SHA256())
        with self._lock:
            self._keys[_spki(key.public_key())] = key
            while len(self._keys) > KEPT_KEYS:
                del self._keys[next(iter(self._keys))]
        return csr.public_bytes(serialization.Encoding.PEM).decode("ascii")

    def clear(self) -> None:
        with self._lock:
            self._keys.clear()

    def key_for(self, certificate: x509.Certificate) -> ec.EllipticCurvePrivateKey:
        public = certificate.public_key()
        if not isinstance(public, ec.EllipticCurvePublicKey):
            raise ValueError("the certificate is not for one of this ring's keys")
        with self._lock:
            key = self._keys.get(_spki(public))
        if key is None:
            raise ValueError("the certificate is not for one of this ring's keys")
        return key


class ClientCertificate:
    """A client certificate and its private key, for one lease of an x509 engine; always current."""

    def __init__(self, task: SecretSource, engine: str, scopes: Sequence[str],
                 ttl_seconds: int | None = None) -> None:
        self._keys = KeyRing()
        self._secret = task.secret(engine, scopes, ttl_seconds, public_key=self._keys.new_csr(),
                                    new_public_key=self._keys.new_csr)

    def __repr__(self) -> str:
        return f"ClientCertificate(lease_id={self.lease_id!r}, private_key=<in memory>)"

    @property
    def lease_id(self) -> str:
        return self._secret.lease_id

    @property
    def expires_at(self) -> float:
        return self._secret.expires_at

    @property
    def ca_pem(self) -> str:
        """The broker CA's certificate, which TLS servers trust for client certificates."""
        return self._secret.details.get("ca", "")

    @property
    def certificate_pem(self) -> str:
        """The current certificate (renewed on a new key first when 80% of its life has passed)."""
        return self._secret.value

    def rotate(self, grace_seconds: float = 0) -> None:
        self._secret.rotate(grace_seconds)

    def private_key(self) -> ec.EllipticCurvePrivateKey:
        certificate = x509.load_pem_x509_certificate(self.certificate_pem.encode("ascii"))
        return self._keys.key_for(certificate)

    def private_key_pem(self) -> str:
        """The current key as unencrypted PKCS#8 PEM: for a library that wants it; keep it off disk."""
        return self.private_key().private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()).decode("ascii")

    def ssl_context(self, *, cafile: str | None = None, cadata: str | None = None) -> ssl.SSLContext:
        """A client TLS context presenting this certificate; ``cafile``/``cadata`` verify the server
        (default: the system's trust store)."""
        context = ssl.create_default_context(cafile=cafile, cadata=cadata)
        certificate = self.certificate_pem
        key = self._keys.key_for(x509.load_pem_x509_certificate(certificate.encode("ascii")))
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        _load_chain(context, certificate.encode("ascii") + pem)
        return context

    def purge(self) -> None:
        """Forget the certificate and every key (the task's completion purges the certificate; the
        keys go with this object or here)."""
        self._secret.purge()
        self._keys.clear()


def _load_chain(context: ssl.SSLContext, pem: bytes) -> None:
    if hasattr(os, "memfd_create"):
        descriptor = os.memfd_create("jitsec-client-certificate", os.MFD_CLOEXEC)
        try:
            _write_all(descriptor, pem)
            context.load_cert_chain(f"/proc/self/fd/{descriptor}")
        finally:
            os.close(descriptor)
        return
    with tempfile.NamedTemporaryFile("wb", prefix="jitsec-", delete=True) as handle:  # 0600 already
        handle.write(pem)
        handle.flush()
        context.load_cert_chain(handle.name)


def _write_all(descriptor: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(descriptor, view):]
