"""The SSH engine: an OpenSSH user certificate per lease, for a key the agent made and kept.

The agent sends only its Ed25519 public key (``public_key``); ``issue`` signs a certificate with the
broker's CA (``ssh_ca``): principals, ``source-address``, ``force-command`` and ``permit-*`` from the
lease's scopes (grammar: ``ssh_scope``), a serial unique to the lease, a key id naming agent, task and
lease, and ``valid_before`` = the lease's expiry, so every sshd refuses it after expiry even with the
broker down. ``revoke`` adds the serial to the KRL that sshd's ``RevokedKeys`` reads (``ssh_krl``);
``reconcile`` rewrites that KRL from its journal. Nothing lives on the servers, so there are no
orphans to remove: a certificate signed just before a crash never reached its agent and expires on
its own. Configured by ``[engines.ssh]`` (see docs/engine-ssh.md).
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from jitsec.broker.custody.signers import EDDSA, CustodyKeys
from jitsec.broker.engines.base import (
    EngineLimits,
    EngineSettings,
    IssuedCredential,
    IssueRequest,
    RevokeOutcome,
)
from jitsec.broker.engines.options import options_record
from jitsec.broker.engines.ssh_ca import FileEd25519Signer, ed25519_public_of, write_public_line
from jitsec.broker.engines.ssh_krl import RevokedSerials
from jitsec.broker.engines.ssh_scope import COMMAND_NAME, SshGrant, parse_scopes
from jitsec.broker.engines.ssh_wire import (
    UserCertificate,
    certificate_line,
    ed25519_public_blob,
    parse_ed25519_public_key,
    public_key_line,
    sign_user_certificate,
)
from jitsec.broker.errors import BadRequest, ConfigError, EngineError, TransientEngineError
from jitsec.broker.signing import TOKEN_PREFIX, Signer, open_or_create


@dataclass(frozen=True, slots=True)
class SshEngineConfig:
    """The options of ``[engines.ssh]`` beyond the TTL limits. Paths must be absolute."""

    ca_key: str  # an absolute path, or "pkcs11:LABEL": an Ed25519 pair in the broker's PKCS#11 token
    krl_file: str
    # where the CA's public line (sshd's TrustedUserCAKeys) is written; default <ca_key>.pub, and for a
    # token key <folder of krl_file>/<LABEL>.pub
    ca_public_key: str = ""
    commands: Mapping[str, str] = field(default_factory=dict)  # name -> forced command line
    backdate_seconds: int = 60  # valid_after = issue time minus this (servers whose clock is behind)
    keep_revoked_seconds: int = 600  # how long a serial stays in the KRL after its certificate expired

    def __post_init__(self) -> None:
        if not (os.path.isabs(self.ca_key) or (len(self.ca_key) > len(TOKEN_PREFIX) and self.in_token)):
            raise ValueError('ca_key must be an absolute path or "pkcs11:LABEL"')
        for key in ("krl_file", "ca_public_key"):
            value = getattr(self, key)
            if (value or key == "krl_file") and not os.path.isabs(value):
                raise ValueError(f"{key} must be an absolute path")
        for name, command in self.commands.items():
            if not COMMAND_NAME.fullmatch(name):
                raise ValueError(f"commands: {name!r} is not a valid name (lowercase letters, digits, _.-)")
            if not isinstance(command, str) or not command.strip() or not command.isprintable():
                raise ValueError(f"commands.{name}: a command is a non-empty printable string")
        if self.backdate_seconds < 0 or self.keep_revoked_seconds < 0:
            raise ValueError("backdate_seconds and keep_revoked_seconds must not be negative")

    @property
    def in_token(self) -> bool:
        return self.ca_key.startswith(TOKEN_PREFIX)

    @property
    def public_line_file(self) -> Path:
        if self.ca_public_key:
            return Path(self.ca_public_key)
        if self.in_token:
            return Path(self.krl_file).parent / f"{self.ca_key.removeprefix(TOKEN_PREFIX)}.pub"
        return Path(self.ca_key + ".pub")


@dataclass(frozen=True, slots=True)
class CertificateHandle:
    """What the store keeps to revoke a lease's certificate: ``<serial>:<valid_before>``."""

    serial: int
    valid_before: int

    def encode(self) -> str:
        return f"{self.serial}:{self.valid_before}"

    @classmethod
    def decode(cls, handle: str) -> CertificateHandle:
        serial, _, valid_before = handle.partition(":")
        if not (serial.isdigit() and valid_before.isdigit()):
            raise EngineError("ssh: unreadable lease handle")
        return cls(serial=int(serial), valid_before=int(valid_before))


class SshEngine:
    """Thread-safe: signing is stateless and the KRL serialises its own writes."""

    def __init__(self, config: SshEngineConfig, *, name: str = "ssh", limits: EngineLimits | None = None,
                 signer: Signer | None = None, clock: Callable[[], float] = time.time) -> None:
        """``signer`` defaults to the key file ``config.ca_key`` (created when missing)."""
        self.name, self.limits, self.config, self._clock = name, limits or EngineLimits(), config, clock
        try:
            self._signer = signer or FileEd25519Signer(Path(config.ca_key))
            raw = ed25519_public_of(self._signer)
            if config.in_token or config.ca_public_key:
                write_public_line(config.public_line_file, raw)
            self._ca_blob = ed25519_public_blob(raw)
        except (OSError, ValueError) as error:
            raise ConfigError(f"engines.{name}: CA key: {error}") from None
        self.revoked = RevokedSerials(Path(config.krl_file), self._ca_blob,
                                      keep_after_expiry_seconds=config.keep_revoked_seconds, clock=clock)
        self.revoked.rebuild()  # after a restart the KRL lists every revoked, unexpired serial again

    @property
    def ca_public_key(self) -> str:
        """The CA's public key line, for a server's ``TrustedUserCAKeys``."""
        return public_key_line(self._ca_blob, comment="jitsec-ssh-ca")

    # -- Engine protocol -------------------------------------------------------------------------

    def validate_scopes(self, scopes: Sequence[str]) -> None:
        parse_scopes(scopes, self.config.commands)

    def issue(self, request: IssueRequest) -> IssuedCredential:
        grant = parse_scopes(request.scopes, self.config.commands)
        if not request.public_key:
            raise BadRequest("the ssh engine certifies the agent's own key: send public_key "
                             "(an 'ssh-ed25519 AAAA...' line)", code="public_key_required")
        try:
            agent_key = parse_ed25519_public_key(request.public_key)
        except ValueError as error:
            raise BadRequest(f"public_key: {error}", code="invalid_public_key") from None
        serial = secrets.randbelow(2**63 - 1) + 1
        key_id = f"jitsec agent={request.agent} task={request.task_id} lease={request.lease_id}"
        valid_before = int(request.expires_at)
        certificate = UserCertificate(
            public_key=agent_key,
            serial=serial,
            key_id=key_id,
            principals=grant.principals,
            valid_after=max(0, int(self._clock()) - self.config.backdate_seconds),
            valid_before=valid_before,
            critical_options=self._critical_options(grant),
            extensions=dict.fromkeys(grant.permits, ""),
        )
        try:
            blob = sign_user_certificate(certificate, self._ca_blob, self._signer.sign, os.urandom(32))
        except ValueError as error:
            raise EngineError(f"ssh: signing failed: {error}") from None
        return IssuedCredential(
            secret=certificate_line(blob),
            handle=CertificateHandle(serial=serial, valid_before=valid_before).encode(),
            username=grant.principals[0],
            details={"principals": ",".join(grant.principals), "serial": str(serial), "key_id": key_id,
                     "ca_public_key": self.ca_public_key},
        )

    def revoke(self, handle: str) -> RevokeOutcome:
        target = CertificateHandle.decode(handle)
        try:
            added = self.revoked.add(target.serial, target.valid_before)
        except OSError as error:
            # a full or read-only disk may recover: retry with backoff rather than give up
            reason = error.strerror or type(error).__name__
            raise TransientEngineError(f"ssh: writing the KRL failed: {reason}") from None
        return RevokeOutcome.REVOKED if added else RevokeOutcome.ALREADY_GONE

    def reconcile(self, live_handles: Collection[str]) -> int:
        """Nothing to delete on servers; prune expired serials and write the KRL again."""
        self.revoked.rebuild()
        return 0

    def close(self) -> None:
        return None

    def _critical_options(self, grant: SshGrant) -> dict[str, str]:
        options: dict[str, str] = {}
        if grant.command is not None:
            options["force-command"] = self.config.commands[grant.command]
        if grant.sources:
            options["source-address"] = ",".join(grant.sources)
        return options


def create(settings: EngineSettings) -> SshEngine:
    """Registry factory for ``[engines.ssh]``."""
    config = options_record(SshEngineConfig, settings.name, settings.options)
    signer = None
    if config.in_token:
        keys = settings.signing_keys or CustodyKeys(None, settings.config_dir)
        signer = open_or_create(keys, config.ca_key, EDDSA)
    return SshEngine(config, name=settings.name, limits=settings.limits, signer=signer)
