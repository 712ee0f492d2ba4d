"""The Kafka engine: one SCRAM-SHA-512 user per lease, allowed exactly the lease's topics and groups.

``issue`` creates the user's ACLs (one per scope) and its SCRAM credential (a password in the broker's
``jitkf_`` format) through the cluster's admin API; ``revoke`` deletes both; ``reconcile`` deletes
users of the broker's making that no live lease backs. Kafka has no expiry for a SCRAM user, so a
lease's TTL is enforced by the broker's reaper (revocation at expiry), not by the cluster: with every
broker process down, an expired user keeps working until one comes back. Deleting a credential stops
new logins; deleting the ACLs stops an open connection's next request (Kafka authorizes each request
but never closes an authenticated connection). Scope grammar: ``kafka_scope``; user names:
``kafka_naming``; admin calls: ``kafka_admin``. Configured by ``[engines.kafka]`` (docs/engine-kafka.md).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jitsec.broker.engines.base import (
    EngineLimits,
    EngineSettings,
    IssuedCredential,
    IssueRequest,
    RevokeOutcome,
)
from jitsec.broker.engines.kafka_admin import KafkaAdmin, KafkaAdminError, KafkaUnavailable, NewUser
from jitsec.broker.engines.kafka_batching import Coalescer
from jitsec.broker.engines.kafka_naming import DEFAULT_USER_PREFIX, parse_user, user_name, validate_prefix
from jitsec.broker.engines.kafka_scope import KafkaScope, ScopeError, parse_scope
from jitsec.broker.engines.options import options_record
from jitsec.broker.errors import ConfigError, EngineError, TransientEngineError

from jitsec.kernel.credential_format import CredentialKind, mint
from jitsec.kernel.redaction import scrub

SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MIN_SCRAM_ITERATIONS = 4096  # Kafka refuses fewer
AGENT_MECHANISM = "SCRAM-SHA-512"
DEFAULT_PASSWORD_ENV = "JITSEC_KAFKA_ADMIN_PASSWORD"


@dataclass(frozen=True, slots=True)
class KafkaEngineConfig:
    """The options of ``[engines.kafka]`` beyond the TTL limits. The admin's password is read from
    the environment variable ``admin_password_env`` or the file ``admin_password_file``, never from
    the config itself."""

    bootstrap_servers: str
    security_protocol: str = "SASL_PLAINTEXT"
    admin_mechanism: str = "PLAIN"
    admin_username: str = ""
    admin_password_env: str = DEFAULT_PASSWORD_ENV
    admin_password_file: str = ""
    ssl_ca_file: str = ""
    agent_bootstrap_servers: str = ""
    agent_security_protocol: str = ""
    user_prefix: str = DEFAULT_USER_PREFIX
    scram_iterations: int = MIN_SCRAM_ITERATIONS  # see docs/engine-kafka.md: random passwords
    allow_prefixed: bool = False
    timeout_seconds: float = 10.0
    reconcile_grace_seconds: float = 120.0

    def __post_init__(self) -> None:
        if not self.bootstrap_servers:
            raise ValueError("bootstrap_servers is required")
        for protocol in (self.security_protocol, self.agent_security_protocol or "SASL_PLAINTEXT"):
            if protocol not in SECURITY_PROTOCOLS:
                known = ", ".join(SECURITY_PROTOCOLS)
                raise ValueError(f"security protocol {protocol!r} is not one of {known}")
        if self.agent_security_protocol and not self.agent_security_protocol.startswith("SASL_"):
            raise ValueError("agent_security_protocol must be SASL_PLAINTEXT or SASL_SSL "
                             "(agents log in with SCRAM)")
        if self.is_sasl and self.admin_mechanism not in SASL_MECHANISMS:
            raise ValueError(f"admin_mechanism must be one of {', '.join(SASL_MECHANISMS)}")
        if self.is_sasl and not self.admin_username:
            raise ValueError("admin_username is required with a SASL security_protocol")
        validate_prefix(self.user_prefix)
        if self.admin_username.startswith(self.user_prefix):
            raise ValueError(f"admin_username {self.admin_username!r} must not start with user_prefix "
                             f"{self.user_prefix!r} (the reconciler deletes users under the prefix)")
        if self.scram_iterations < MIN_SCRAM_ITERATIONS:
            raise ValueError(f"scram_iterations must be at least {MIN_SCRAM_ITERATIONS}")
        if self.timeout_seconds <= 0 or self.reconcile_grace_seconds < 0:
            raise ValueError("timeout_seconds must be > 0 and reconcile_grace_seconds >= 0")

    @property
    def is_sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    @classmethod
    def from_options(cls, section: str, options: Mapping[str, Any]) -> KafkaEngineConfig:
        return options_record(cls, section, options)

    def admin_password(self, section: str, environ: Mapping[str, str]) -> str:
        """The admin's password from its file or environment variable (ConfigError when missing)."""
        if self.admin_password_file:
            try:
                password = Path(self.admin_password_file).read_text(encoding="utf-8").strip()
            except OSError as error:
                raise ConfigError(f"engines.{section}: admin_password_file: {error.strerror}") from None
        else:
            password = environ.get(self.admin_password_env, "")
        if not password:
            where = self.admin_password_file or f"${self.admin_password_env}"
            raise ConfigError(f"engines.{section}: no admin password in {where}")
        return password

    def client_config(self, password: str) -> dict[str, Any]:
        """librdkafka settings of the engine's admin client."""
        settings: dict[str, Any] = {"bootstrap.servers": self.bootstrap_servers,
                                    "security.protocol": self.security_protocol}
        if self.is_sasl:
            settings |= {"sasl.mechanism": self.admin_mechanism, "sasl.username": self.admin_username,
                         "sasl.password": password}
        if self.ssl_ca_file:
            settings["ssl.ca.location"] = self.ssl_ca_file
        return settings

    def agent_details(self) -> dict[str, str]:
        """What an agent needs besides its user name and password to connect."""
        return {"bootstrap_servers": self.agent_bootstrap_servers or self.bootstrap_servers,
                "security_protocol": self.agent_security_protocol or self.security_protocol,
                "sasl_mechanism": AGENT_MECHANISM}


@dataclass(frozen=True, slots=True)
class UserHandle:
    """What the store keeps to revoke a lease's user: its name (its ACLs are found by principal)."""

    user: str

    def encode(self) -> str:
        return json.dumps({"user": self.user}, separators=(",", ":"))

    @classmethod
    def decode(cls, handle: str) -> UserHandle:
        try:
            return cls(user=str(json.loads(handle)["user"]))
        except (ValueError, KeyError, TypeError):
            raise EngineError("kafka: unreadable lease handle") from None


class KafkaEngine:
    """Thread-safe; holds one admin client (closed by ``close``)."""

    def __init__(
        self,
        config: KafkaEngineConfig,
        admin_password: str = "",
        *,
        name: str = "kafka",
        limits: EngineLimits | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.limits = limits or EngineLimits()
        self.config = config
        self._clock = clock
        self._password_to_hide = admin_password
        self._admin = KafkaAdmin(config.client_config(admin_password), timeout_seconds=config.timeout_seconds)
        # concurrent issues and revocations travel together (see kafka_batching for why)
        self._creations: Coalescer[NewUser, None] = Coalescer(self._admin.create_users)
        self._deletions: Coalescer[str, bool] = Coalescer(self._admin.delete_users)
        self._details = config.agent_details()
        self._reconcile_lock = threading.Lock()

    # -- Engine protocol -------------------------------------------------------------------------

    def validate_scopes(self, scopes: Sequence[str]) -> None:
        self.parse_scopes(scopes)

    def parse_scopes(self, scopes: Sequence[str]) -> tuple[KafkaScope, ...]:
        if not scopes:
            raise ScopeError("a kafka lease needs at least one scope")
        return tuple(parse_scope(text, allow_prefixed=self.config.allow_prefixed) for text in scopes)

    def issue(self, request: IssueRequest) -> IssuedCredential:
        scopes = self.parse_scopes(request.scopes)
        # the task id, never the task's name: user names appear in the cluster's logs and ACL listings
        user = user_name(self.config.user_prefix, request.agent, request.task_id, request.lease_id,
                         self._clock())
        password = mint(CredentialKind.KAFKA_PASSWORD)
        try:
            self._creations.call(NewUser(user, password, self.config.scram_iterations, scopes))
        except KafkaAdminError as failure:
            reason = scrub(str(failure), [password, self._password_to_hide])
            kind = TransientEngineError if isinstance(failure, KafkaUnavailable) else EngineError
            # create_users removed what it could; what a failed rollback left is the reconciler's
            raise kind(f"kafka: {reason}; not issued") from None
        return IssuedCredential(secret=password, handle=UserHandle(user).encode(), username=user,
                                details=dict(self._details))

    def revoke(self, handle: str) -> RevokeOutcome:
        user = self._managed(UserHandle.decode(handle).user)
        try:
            removed = self._deletions.call(user)
        except KafkaAdminError as error:
            raise self._revoke_error(error) from None
        return RevokeOutcome.REVOKED if removed else RevokeOutcome.ALREADY_GONE

    def reconcile(self, live_handles: Collection[str]) -> int:
        """Delete users (credential and ACLs) under the broker's prefix that no live lease backs.

        Users issued less than ``reconcile_grace_seconds`` ago (by the time in their name) are
        spared: their lease may be between ``issue`` and the store's write. One run at a time.
        """
        live = {UserHandle.decode(handle).user for handle in live_handles if handle}
        cutoff = self._clock() - self.config.reconcile_grace_seconds
        with self._reconcile_lock:
            try:
                names = self._admin.users()
            except KafkaAdminError as error:
                raise self._revoke_error(error) from None
            orphans = [name for name in sorted(names) if self._is_orphan(name, live, cutoff)]
            outcomes = self._admin.delete_users(orphans) if orphans else []
            failures = [outcome for outcome in outcomes if isinstance(outcome, KafkaAdminError)]
            if failures:
                raise self._revoke_error(failures[0])
            return sum(1 for outcome in outcomes if outcome is True)

    def _is_orphan(self, name: str, live: set[str], cutoff: float) -> bool:
        mark = parse_user(self.config.user_prefix, name)
        return (mark is not None and name not in live and name != self.config.admin_username
                and mark.issued_at <= cutoff)

    def close(self) -> None:
        self._admin.close()

    # -- helpers ---------------------------------------------------------------------------------

    def _managed(self, user: str) -> str:
        """Refuse to touch a user this engine could not have made (a damaged or forged handle)."""
        if parse_user(self.config.user_prefix, user) is None or user == self.config.admin_username:
            raise EngineError(f"kafka: {user!r} is not a user of this engine's making "
                              f"(prefix {self.config.user_prefix!r}); nothing was deleted")
        return user

    def _revoke_error(self, error: KafkaAdminError) -> EngineError:
        reason = f"kafka: {scrub(str(error), [self._password_to_hide])}"
        return TransientEngineError(reason) if isinstance(error, KafkaUnavailable) else EngineError(reason)


def create(settings: EngineSettings, environ: Mapping[str, str] | None = None) -> KafkaEngine:
    """Registry factory for ``[engines.kafka]``."""
    config = KafkaEngineConfig.from_options(settings.name, settings.options)
    password = config.admin_password(settings.name, os.environ if environ is None else environ) \
        if config.is_sasl else ""
    return KafkaEngine(config, password, name=settings.name, limits=settings.limits)
