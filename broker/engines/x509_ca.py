"""The broker's X.509 CA: its self-signed certificate, the client certificates it signs, and its CRL.

Everything is signed through a ``Signer`` (``x509_signer``), so the CA key may live in a file or an
HSM. The CA certificate is made on first use and kept next to the key; a TLS server trusts it as the
issuer of client certificates. Client certificates carry the agent and task as a URI SAN
(``jitsec://agent/<agent>/task/<task_id>``) and the agent as CN, the scopes' DNS names, the
``clientAuth`` extended key usage and the CRL's address.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from jitsec.broker.engines.x509_csr import CertifiableKey
from jitsec.broker.engines.x509_ledger import Revoked
from jitsec.broker.engines.x509_signer import sign_certificate, sign_crl
from jitsec.broker.errors import ConfigError
from jitsec.broker.signing import Signer

CA_VALIDITY = dt.timedelta(days=3650)
CLOCK_SKEW = dt.timedelta(seconds=60)  # notBefore this much before issuance: peers' clocks differ
URI_SCHEME = "jitsec"


def _utc(timestamp: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(int(timestamp), dt.UTC)  # X.509 times have whole seconds


def identity_uri(agent: str, task_id: str) -> str:
    return f"{URI_SCHEME}://agent/{quote(agent, safe='')}/task/{quote(task_id, safe='')}"


@dataclass(frozen=True, slots=True)
class ClientRequest:
    """One client certificate to sign."""

    serial: int
    public_key: CertifiableKey
    agent: str
    task_id: str
    names: tuple[str, ...]
    issued_at: float
    not_after: float


class CertificateAuthority:
    """Thread-safe (it holds no mutable state beyond what is set up in ``__init__``)."""

    def __init__(self, signer: Signer, public_key: ec.EllipticCurvePublicKey, cert_path: Path, *,
                 common_name: str, crl_url: str) -> None:
        self._signer = signer
        self._public_key = public_key
        self._crl_url = crl_url
        self.certificate = _load_or_create_ca(cert_path, signer, public_key, common_name)
        self.certificate_pem = self.certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")
        self._authority_key = x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key)
        self._entries: dict[int, x509.RevokedCertificate] = {}  # callers serialise ``crl`` calls

    def issue(self, request: ClientRequest) -> x509.Certificate:
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, request.agent[:64]),
                             x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, request.task_id[:64])])
        names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(identity_uri(request.agent,
                                                                                     request.task_id))]
        names += [x509.DNSName(name) for name in request.names]
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.certificate.subject)
            .public_key(request.public_key)
            .serial_number(request.serial)
            .not_valid_before(_utc(request.issued_at) - CLOCK_SKEW)
            .not_valid_after(_utc(request.not_after))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(digital_signature=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(self._authority_key, critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(request.public_key), critical=False)
        )
        if self._crl_url:
            point = x509.DistributionPoint([x509.UniformResourceIdentifier(self._crl_url)], None, None, None)
            builder = builder.add_extension(x509.CRLDistributionPoints([point]), critical=False)
        return sign_certificate(builder, self._signer)

    def crl(self, revoked: list[Revoked], number: int, now: float,
            validity: dt.timedelta) -> x509.CertificateRevocationList:
        # entries are made once per serial and handed to the builder whole: adding them one by one
        # copies the list each time (quadratic in the CRL's length)
        known = self._entries
        entries = {entry.serial: known.get(entry.serial) or _revoked_entry(entry) for entry in revoked}
        self._entries = entries
        builder = x509.CertificateRevocationListBuilder(
            issuer_name=self.certificate.subject,
            last_update=_utc(now),
            next_update=_utc(now) + validity,
            extensions=[x509.Extension(x509.CRLNumber.oid, False, x509.CRLNumber(number)),
                        x509.Extension(x509.AuthorityKeyIdentifier.oid, False, self._authority_key)],
            revoked_certificates=list(entries.values()),
        )
        return sign_crl(builder, self._signer)


def _revoked_entry(entry: Revoked) -> x509.RevokedCertificate:
    return x509.RevokedCertificateBuilder().serial_number(entry.serial).revocation_date(
        _utc(entry.revoked_at)).build()


def _key_usage(*, digital_signature: bool = False, cert_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=cert_sign, crl_sign=cert_sign,
        encipher_only=False, decipher_only=False,
    )


def _load_or_create_ca(path: Path, signer: Signer, public_key: ec.EllipticCurvePublicKey,
                       common_name: str) -> x509.Certificate:
    try:
        certificate = x509.load_pem_x509_certificate(path.read_bytes())
    except FileNotFoundError:
        certificate = _self_signed(signer, public_key, common_name)
        write_atomically(path, certificate.public_bytes(serialization.Encoding.PEM))
        return certificate
    except (OSError, ValueError) as error:
        raise ConfigError(f"cannot read the X.509 CA certificate {path}: {error}") from None
    if certificate.public_key() != public_key:
        raise ConfigError(f"{path} is not the certificate of the CA key (remove it to make a new one)")
    return certificate


def _self_signed(signer: Signer, public_key: ec.EllipticCurvePublicKey, common_name: str) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    return sign_certificate(builder, signer)


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` whole (a reader sees the old file or the new one, never half of one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        os.chmod(temporary, 0o644)  # public material: the TLS server's user must read it
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
