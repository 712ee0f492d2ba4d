"""The Kafka admin calls the engine makes, through confluent-kafka's ``AdminClient`` (librdkafka).

Why that client: it speaks KIP-554 (``AlterUserScramCredentials``), computes the salted password on
the client so the password itself never crosses the wire, is thread-safe and pipelines requests
from many threads over one connection. Every call waits on its futures with a timeout; failures are
sorted into ``KafkaUnavailable`` (the cluster did not answer: retry) and ``KafkaRefused`` (it
answered no: a bad setting or missing permission). Messages never carry a password.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialAlteration,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)
from jitsec.broker.engines.kafka_scope import KafkaScope, Operation, ResourceKind

MECHANISM = ScramMechanism.SCRAM_SHA_512
SALT_BYTES = 32
_UNAVAILABLE_CODES = frozenset({
    KafkaError._TRANSPORT, KafkaError._TIMED_OUT, KafkaError._ALL_BROKERS_DOWN, KafkaError._RESOLVE,
    KafkaError.REQUEST_TIMED_OUT, KafkaError.NOT_CONTROLLER, KafkaError.COORDINATOR_NOT_AVAILABLE,
})


class KafkaAdminError(Exception):
    """An admin call failed; ``code`` is Kafka's error code when the cluster gave one."""

    def __init__(self, reason: str, code: int | None = None) -> None:
        super().__init__(reason)
        self.code = code


class KafkaUnavailable(KafkaAdminError):
    """The cluster did not answer in time or answered "try again"."""


class KafkaRefused(KafkaAdminError):
    """The cluster answered with a permanent error (authorization, a disabled mechanism, ...)."""


def acl_bindings(principal: str, scopes: Iterable[KafkaScope]) -> list[AclBinding]:
    """One ALLOW binding per scope for ``User:<principal>`` from any host."""
    bindings: list[AclBinding] = []
    for scope in scopes:
        resource = ResourceType.GROUP if scope.kind is ResourceKind.GROUP else ResourceType.TOPIC
        pattern = ResourcePatternType.PREFIXED if scope.prefixed else ResourcePatternType.LITERAL
        operation = AclOperation.WRITE if scope.operation is Operation.WRITE else AclOperation.READ
        bindings.append(AclBinding(resource, scope.name, pattern, f"User:{principal}", "*", operation,
                                   AclPermissionType.ALLOW))
    return bindings


@dataclass(frozen=True, slots=True)
class NewUser:
    """A user to create: its SCRAM credential and one ACL per scope."""

    name: str
    password: str = field(repr=False)
    iterations: int
    scopes: tuple[KafkaScope, ...]


class KafkaAdmin:
    """Thread-safe (the underlying client is); one per engine."""

    def __init__(self, client_config: Mapping[str, Any], *, timeout_seconds: float) -> None:
        self._timeout = timeout_seconds
        self._client = AdminClient(dict(client_config))

    def create_users(self, users: Sequence[NewUser]) -> list[KafkaAdminError | None]:
        """Create each user's ACLs and SCRAM credential, all in two requests; per user, None or why
        it failed. A user that failed in part is removed again (else left to the reconciler)."""
        bindings = {user.name: list(dict.fromkeys(acl_bindings(user.name, user.scopes))) for user in users}
        upserts: list[UserScramCredentialAlteration] = [
            UserScramCredentialUpsertion(user.name, ScramCredentialInfo(MECHANISM, user.iterations),
                                         user.password.encode("ascii"), secrets.token_bytes(SALT_BYTES))
            for user in users]
        every_binding = [binding for group in bindings.values() for binding in group]
        acl_futures = (self._client.create_acls(every_binding, request_timeout=self._timeout)
                       if every_binding else {})  # the client refuses an empty list
        credential_futures = self._client.alter_user_scram_credentials(upserts, request_timeout=self._timeout)
        outcomes: list[KafkaAdminError | None] = []
        for user in users:
            futures = [acl_futures[binding] for binding in bindings[user.name]]
            try:
                self._wait([*futures, credential_futures[user.name]], f"creating user {user.name!r}")
                outcomes.append(None)
            except KafkaAdminError as error:
                outcomes.append(error)
        failed = [user.name for user, outcome in zip(users, outcomes, strict=True) if outcome is not None]
        if failed:
            self.delete_users(failed)  # best effort: its own failures are the reconciler's
        return outcomes

    def delete_users(self, names: Sequence[str]) -> list[bool | KafkaAdminError]:
        """Delete each user's SCRAM credential and every ACL naming it, all in two requests; per user,
        whether anything was there, or why it failed."""
        deletions: list[UserScramCredentialAlteration] = [
            UserScramCredentialDeletion(name, MECHANISM) for name in names]
        filters = {name: _acl_filter(f"User:{name}") for name in names}
        credential_futures = self._client.alter_user_scram_credentials(deletions,
                                                                       request_timeout=self._timeout)
        acl_futures = self._client.delete_acls(list(filters.values()), request_timeout=self._timeout)
        outcomes: list[bool | KafkaAdminError] = []
        for name in names:
            try:
                outcome = self._delete_outcome(name, credential_futures[name], acl_futures[filters[name]])
                outcomes.append(outcome)
            except KafkaAdminError as error:
                outcomes.append(error)
        return outcomes

    def create_user(self, user: NewUser) -> None:
        outcome = self.create_users([user])[0]
        if outcome is not None:
            raise outcome

    def delete_user(self, name: str) -> bool:
        outcome = self.delete_users([name])[0]
        if isinstance(outcome, KafkaAdminError):
            raise outcome
        return outcome

    def _delete_outcome(self, name: str, credential: Future, acls: Future) -> bool:
        removed_credential = True
        try:
            self._wait([credential], f"deleting user {name!r}")
        except KafkaRefused as error:
            if error.code != KafkaError.RESOURCE_NOT_FOUND:
                raise
            removed_credential = False
        removed_acls = self._wait([acls], f"deleting the ACLs of {name!r}")[0]
        return removed_credential or bool(removed_acls)

    def users(self) -> set[str]:
        """Every user with a SCRAM credential, and every principal ``User:<name>`` of an ACL."""
        described = self._client.describe_user_scram_credentials(request_timeout=self._timeout)
        if not isinstance(described, Future):  # one future for "every user", a dict when naming users
            raise KafkaRefused("listing SCRAM users: unexpected answer from the client library")
        names = set(self._wait([described], "listing SCRAM users")[0])
        bindings = self._wait([self._client.describe_acls(_acl_filter(None), request_timeout=self._timeout)],
                              "listing ACLs")[0]
        names.update(b.principal.removeprefix("User:") for b in bindings if b.principal.startswith("User:"))
        return names

    def close(self) -> None:
        self._client = None  # type: ignore[assignment]  # librdkafka closes with the last reference

    def _wait(self, futures: Iterable[Future], doing: str) -> list[Any]:
        results: list[Any] = []
        failure: Exception | None = None
        for future in list(futures):
            try:
                results.append(future.result(timeout=self._timeout))
            except FutureTimeout:
                failure = failure or KafkaUnavailable(f"{doing}: no answer within {self._timeout:g}s")
            except KafkaException as error:
                failure = failure or _classify(error, doing)
        if failure is not None:
            raise failure
        return results


def _acl_filter(principal: str | None) -> AclBindingFilter:
    """Every ACL of ``principal`` (every ACL at all with None); None is the API's "any" for names,
    which the library's type hints do not say."""
    return AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, principal, None,  # type: ignore[arg-type]
                            AclOperation.ANY, AclPermissionType.ANY)


def _classify(error: KafkaException, doing: str) -> KafkaAdminError:
    kafka_error = error.args[0] if error.args and isinstance(error.args[0], KafkaError) else None
    if kafka_error is None:
        return KafkaRefused(f"{doing}: {type(error).__name__}")
    reason = f"{doing}: {kafka_error.name()} ({kafka_error.str()})"
    if kafka_error.retriable() or kafka_error.code() in _UNAVAILABLE_CODES:
        return KafkaUnavailable(reason, kafka_error.code())
    return KafkaRefused(reason, kafka_error.code())
