"""The X.509 engine: a client certificate for mutual TLS per lease, on a key the agent made and kept.

``issue`` checks the agent's CSR (``x509_csr``), signs a certificate that expires with the lease
(``notAfter`` = lease expiry, so expiry holds with the broker down) and records it; the agent gets the
certificate, never handing over its private key. ``revoke`` lists the serial in the CA's CRL and
writes the CRL file a TLS server reads (``crl_path``); ``reconcile`` revokes certificates no live
lease backs. The lease's leak fingerprint is the hash of the certified public key, which a scanner
derives from a leaked private key. Scope grammar: ``x509_scope``. See docs/engine-x509.md.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import subprocess
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jitsec.broker.custody.signers import CustodyKeys
from jitsec.broker.engines.base import (
    EngineLimits,
    EngineSettings,
    IssuedCredential,
    IssueRequest,
    RevokeOutcome,
)
from jitsec.broker.engines.x509_ca import CertificateAuthority, ClientRequest, write_atomically
from jitsec.broker.engines.x509_csr import check_csr
from jitsec.broker.engines.x509_ledger import KeyReused, Ledger
from jitsec.broker.engines.x509_scope import parse_scopes
from jitsec.broker.engines.x509_signer import EcKeyFileSigner
from jitsec.broker.errors import BadRequest, ConfigError, EngineError
from jitsec.broker.signing import TOKEN_PREFIX, Signer, open_or_create

log = logging.getLogger("jitsec.broker.engines.x509")

KEY_FILE = "ca-key.pem"
CA_FILE = "ca.pem"
LEDGER_FILE = "certificates.sqlite"
CRL_FILE = "crl.pem"


@dataclass(frozen=True, slots=True)
class X509EngineConfig:
    """The options of ``[engines.x509]`` beyond the TTL limits."""

    state_dir: str
    crl_path: str = ""  # default: <state_dir>/crl.pem
    crl_url: str = "http://127.0.0.1:8470/v1/x509/crl"
    ca_common_name: str = "jitsec broker client CA"
    crl_validity_seconds: int = 7 * 86400
    reconcile_grace_seconds: float = 120.0
    # run after every CRL write so the TLS server reads it (e.g. ["nginx", "-s", "reload"]); argv, no shell
    crl_reload_command: tuple[str, ...] = ()
    crl_reload_timeout_seconds: float = 10.0
    # the CA's signing key: "" for <state_dir>/ca-key.pem, "pkcs11:LABEL" for a key pair in the
    # broker's PKCS#11 token ([keys]), or a PEM file path; made on first use either way
    ca_key: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.crl_reload_command, list):
            object.__setattr__(self, "crl_reload_command", tuple(self.crl_reload_command))
        command = self.crl_reload_command
        if not isinstance(command, tuple) or not all(isinstance(part, str) and part for part in command):
            raise ValueError("crl_reload_command must be a list of non-empty strings (argv, no shell)")
        if self.crl_reload_timeout_seconds <= 0:
            raise ValueError("crl_reload_timeout_seconds must be positive")
        if not self.state_dir:
            raise ValueError("state_dir is required (where the CA key, certificate and CRL live)")
        if self.crl_validity_seconds < 3600:
            raise ValueError("crl_validity_seconds must be at least 3600")
        if self.reconcile_grace_seconds < 0:
            raise ValueError("reconcile_grace_seconds must be >= 0")
        if not self.ca_common_name or len(self.ca_common_name) > 64:
            raise ValueError("ca_common_name must be 1-64 characters")
        if not isinstance(self.ca_key, str) or self.ca_key == TOKEN_PREFIX:
            raise ValueError("ca_key must be a PEM file path or \"pkcs11:LABEL\"")

    @property
    def crl_file(self) -> Path:
        return Path(self.crl_path) if self.crl_path else Path(self.state_dir) / CRL_FILE

    @classmethod
    def from_options(cls, section: str, options: Mapping[str, Any]) -> X509EngineConfig:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(options) - known - {"kind", "default_ttl_seconds", "max_ttl_seconds"})
        if unknown:
            raise ConfigError(f"engines.{section}: unknown option(s) {', '.join(unknown)}")
        try:
            return cls(**{key: value for key, value in options.items() if key in known})
        except (TypeError, ValueError) as error:
            raise ConfigError(f"engines.{section}: {error}") from None


@dataclass(frozen=True, slots=True)
class CertificateHandle:
    """What the store keeps to revoke a lease's certificate: its serial (hex) and expiry."""

    serial: str
    not_after: float

    def encode(self) -> str:
        return json.dumps({"serial": self.serial, "not_after": self.not_after}, separators=(",", ":"))

    @classmethod
    def decode(cls, handle: str) -> CertificateHandle:
        try:
            data = json.loads(handle)
            serial = str(data["serial"])
            int(serial, 16)
            return cls(serial=serial, not_after=float(data["not_after"]))
        except (ValueError, KeyError, TypeError):
            raise EngineError("x509: unreadable lease handle") from None


class X509Engine:
    """Thread-safe. The CRL is rebuilt after every change; concurrent revocations share one rebuild."""

    def __init__(
        self,
        config: X509EngineConfig,
        *,
        name: str = "x509",
        limits: EngineLimits | None = None,
        signer: Signer | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.limits = limits or EngineLimits()
        self.config = config
        self._clock = clock
        state = Path(config.state_dir)
        if signer is None:
            file_signer = EcKeyFileSigner(state / KEY_FILE)
            signer, public_key = file_signer, file_signer.public_key
        else:
            public_key = _public_key_of(signer)
        self.ca = CertificateAuthority(signer, public_key, state / CA_FILE,
                                       common_name=config.ca_common_name, crl_url=config.crl_url)
        self._ledger = Ledger(state / LEDGER_FILE)
        self._changes = 0  # revocations recorded (under _changes_lock) ...
        self._published = -1  # ... and how many of them the published CRL includes (under _crl_lock)
        self._changes_lock = threading.Lock()
        self._crl_lock = threading.Lock()
        self._crl_der = b""
        self._crl_written_at = 0.0
        self.publish_crl()  # a restart lists every revoked, unexpired serial again (and the file exists)

    # -- Engine protocol -------------------------------------------------------------------------

    def validate_scopes(self, scopes: Sequence[str]) -> None:
        parse_scopes(scopes)

    def issue(self, request: IssueRequest) -> IssuedCredential:
        names = parse_scopes(request.scopes)
        checked = check_csr(request.public_key)
        now = self._clock()
        serial = x509.random_serial_number()
        serial_hex = format(serial, "x")
        not_after = float(int(request.expires_at))  # whole seconds, never past the lease
        try:
            self._ledger.record(serial_hex, request.lease_id, checked.fingerprint, now, not_after)
        except KeyReused:
            raise BadRequest("x509: this key was certified before; make a new key and CSR for every "
                             "certificate", code="invalid_public_key") from None
        try:
            certificate = self.ca.issue(ClientRequest(
                serial=serial, public_key=checked.public_key, agent=request.agent, task_id=request.task_id,
                names=names, issued_at=now, not_after=not_after))
        except Exception:
            self._ledger.forget(serial_hex)
            raise
        pem = certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")
        return IssuedCredential(
            secret=pem,
            handle=CertificateHandle(serial=serial_hex, not_after=not_after).encode(),
            fingerprint=checked.fingerprint,
            details={"serial": serial_hex, "not_after": str(int(not_after)),
                     "ca": self.ca.certificate_pem, "crl_url": self.config.crl_url},
        )

    def revoke(self, handle: str) -> RevokeOutcome:
        target = CertificateHandle.decode(handle)
        now = self._clock()
        if target.not_after <= now:
            return RevokeOutcome.ALREADY_GONE  # expired: every TLS server refuses it already
        if not self._ledger.revoke(target.serial, target.not_after, now):
            return RevokeOutcome.ALREADY_GONE
        self._changed()
        return RevokeOutcome.REVOKED

    def reconcile(self, live_handles: Collection[str]) -> int:
        """Revoke certificates of this CA that no live lease backs and older than the grace period
        (their lease may be between ``issue`` and the store's write); also refresh an ageing CRL and
        forget certificates long expired."""
        live = {CertificateHandle.decode(handle).serial for handle in live_handles if handle}
        now = self._clock()
        orphans = self._ledger.unbacked(live, now - self.config.reconcile_grace_seconds, now)
        removed = sum(1 for orphan in orphans if self._ledger.revoke(orphan.serial, now + 1, now))
        if removed:
            log.warning("x509: revoked %d certificate(s) that no live lease backs", removed)
            self._changed()
        elif now - self._crl_written_at > self.config.crl_validity_seconds / 2:
            self.publish_crl()
        self._ledger.prune(now - 86400)
        return removed

    def close(self) -> None:
        self._ledger.close()

    # -- the CRL ---------------------------------------------------------------------------------

    def _changed(self) -> None:
        with self._changes_lock:
            self._changes += 1
            wanted = self._changes
        with self._crl_lock:
            if self._published >= wanted:  # another thread's rebuild already includes this change
                return
        self.publish_crl()

    def publish_crl(self) -> None:
        """Rebuild the CRL from the ledger, sign it, and replace the CRL file (PEM) atomically."""
        with self._crl_lock:
            with self._changes_lock:
                included = self._changes
            now = self._clock()
            crl = self.ca.crl(self._ledger.revoked_unexpired(now), self._ledger.next_crl_number(), now,
                              dt.timedelta(seconds=self.config.crl_validity_seconds))
            try:
                write_atomically(self.config.crl_file, crl.public_bytes(serialization.Encoding.PEM))
            except OSError as error:
                raise EngineError(f"x509: cannot write the CRL to {self.config.crl_file}: "
                                  f"{error.strerror}") from None
            self._crl_der = crl.public_bytes(serialization.Encoding.DER)
            self._crl_written_at = now
            self._published = included
            if self.config.crl_reload_command:
                self._reload_tls_server()

    def _reload_tls_server(self) -> None:
        """Run ``crl_reload_command``; a failure is logged, not raised: the revocation is recorded and
        the CRL written, and the next change (or the reconciler's refresh) runs it again."""
        command = self.config.crl_reload_command
        try:
            done = subprocess.run(command, capture_output=True, check=False,
                                  timeout=self.config.crl_reload_timeout_seconds)
        except (OSError, subprocess.TimeoutExpired) as error:
            log.error("x509: the CRL reload command %s failed: %s", command[0], type(error).__name__)
            return
        if done.returncode != 0:
            last = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["(no output)"]
            log.error("x509: the CRL reload command %s exited %d: %s", command[0], done.returncode,
                      last[0][:200])

    @property
    def crl_der(self) -> bytes:
        with self._crl_lock:
            return self._crl_der

    @property
    def ca_certificate_pem(self) -> str:
        return self.ca.certificate_pem


def _public_key_of(signer: Signer) -> ec.EllipticCurvePublicKey:
    """The public key of a ``Signer`` from its JWK (an HSM-held key has no file to read)."""
    jwk = signer.public_jwk()
    if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
        raise ConfigError("the X.509 CA needs an EC P-256 signing key")

    def number(field: str) -> int:
        return int.from_bytes(base64.urlsafe_b64decode(jwk[field] + "=" * (-len(jwk[field]) % 4)), "big")

    return ec.EllipticCurvePublicNumbers(number("x"), number("y"), ec.SECP256R1()).public_key()


def create(settings: EngineSettings) -> X509Engine:
    """Registry factory for ``[engines.x509]``."""
    config = X509EngineConfig.from_options(settings.name, settings.options)
    signer = None
    if config.ca_key:
        keys = settings.signing_keys or CustodyKeys(None, settings.config_dir)
        signer = open_or_create(keys, config.ca_key)
        log.info("engine %s: CA key %s (%s)", settings.name, signer.key_id, config.ca_key)
    return X509Engine(config, name=settings.name, limits=settings.limits, signer=signer)
