"""The Kafka engine against the real Kafka (KRaft, StandardAuthorizer, SASL listener): a lease's user
reads and writes exactly its topics and group, is refused everywhere else, and is refused after
revocation (a new login fails; a connection kept open is denied its next request); the reconciler
deletes orphans and spares the live, the young and everybody else's users."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from jitsec.broker.engines.base import IssuedCredential, IssueRequest, RevokeOutcome
from jitsec.broker.engines.kafka import KafkaEngine, UserHandle
from jitsec.broker.engines.kafka_admin import KafkaAdmin, NewUser
from jitsec.broker.errors import EngineError, ScopeError, TransientEngineError

from jitsec.kernel.credential_format import CredentialKind, mint, parse
from tests.broker_kafka.clients import LOGIN_REFUSED, LeaseClient
from tests.broker_kafka.conftest import Sasl, admin_settings

pytestmark = pytest.mark.kafka
GROUP = "kafka:group:jitsec-kafka-test"  # the group LeaseClient joins by default


def request_for(*scopes: str, agent: str = "agent-1", task: str = "task-1", lease: str | None = None,
                ttl: float = 60) -> IssueRequest:
    return IssueRequest(lease_id=lease or f"lease-{uuid.uuid4().hex[:8]}", agent=agent, task_id=task,
                        task_name="nightly report", scopes=scopes, ttl_seconds=int(ttl),
                        expires_at=time.time() + ttl)


@pytest.fixture
def client_for(kafka_sasl: Sasl) -> Iterator[Callable[[IssuedCredential], LeaseClient]]:
    clients: list[LeaseClient] = []

    def build(credential: IssuedCredential, group: str = "jitsec-kafka-test") -> LeaseClient:
        assert credential.username is not None
        clients.append(LeaseClient(kafka_sasl[0], credential.username, credential.secret, group=group))
        return clients[-1]

    yield build  # type: ignore[misc]
    for client in clients:
        client.close()


def test_the_user_reads_its_topic_and_is_refused_on_another(
        engine: KafkaEngine, topics: dict[str, str], client_for: Callable[..., LeaseClient]) -> None:
    credential = engine.issue(request_for(f"kafka:topic:{topics['mine']}:READ", GROUP))
    parsed = parse(credential.secret)
    assert parsed is not None and parsed.kind is CredentialKind.KAFKA_PASSWORD
    assert credential.details["sasl_mechanism"] == "SCRAM-SHA-512"
    client = client_for(credential)
    assert client.read_first(topics["mine"]).value == topics["mine"].encode()
    assert client.read_first(topics["other"]).error == "TOPIC_AUTHORIZATION_FAILED"
    assert client.write(topics["mine"], b"not allowed").error == "TOPIC_AUTHORIZATION_FAILED"


def test_write_scope_writes_and_group_scope_names_the_only_group(
        engine: KafkaEngine, topics: dict[str, str], client_for: Callable[..., LeaseClient]) -> None:
    credential = engine.issue(request_for(f"kafka:topic:{topics['out']}:WRITE",
                                          f"kafka:topic:{topics['mine']}:READ", GROUP))
    assert client_for(credential).write(topics["out"], b"report").ok
    assert client_for(credential).write(topics["other"], b"elsewhere").error == "TOPIC_AUTHORIZATION_FAILED"
    assert client_for(credential).join(topics["mine"]).ok  # as a member of the group its scope names
    other_group = client_for(credential, group="someone-elses-group")
    assert other_group.join(topics["mine"]).error == "GROUP_AUTHORIZATION_FAILED"


def test_after_revocation_a_new_login_is_refused_and_an_open_connection_is_denied(
        engine: KafkaEngine, topics: dict[str, str], client_for: Callable[..., LeaseClient]) -> None:
    credential = engine.issue(request_for(f"kafka:topic:{topics['mine']}:READ", GROUP))
    kept = client_for(credential)
    assert kept.read_first(topics["mine"], keep=True).ok
    assert engine.revoke(credential.handle) is RevokeOutcome.REVOKED
    assert client_for(credential).read_first(topics["mine"]).error == LOGIN_REFUSED
    # Kafka never closes an authenticated connection; the deleted ACLs deny its next request
    assert kept.read_first(topics["mine"], keep=True).error == "TOPIC_AUTHORIZATION_FAILED"
    assert engine.revoke(credential.handle) is RevokeOutcome.ALREADY_GONE


def test_every_lease_gets_its_own_user_and_password(engine: KafkaEngine, topics: dict[str, str]) -> None:
    scope = f"kafka:topic:{topics['mine']}:READ"
    first = engine.issue(request_for(scope, lease="lease-a"))
    second = engine.issue(request_for(scope, lease="lease-b"))
    assert first.username != second.username and first.secret != second.secret
    assert first.username is not None and "agent-1_task-1_" in first.username


def test_the_reconciler_deletes_orphans_and_spares_the_live_the_young_and_others(
        make_engine: Callable[..., KafkaEngine], kafka_sasl: Sasl, topics: dict[str, str],
        client_for: Callable[..., LeaseClient], user_prefix: str) -> None:
    engine = make_engine(reconcile_grace_seconds=0)
    scopes = (f"kafka:topic:{topics['mine']}:READ", "kafka:group:jitsec-kafka-test")
    live = engine.issue(request_for(*scopes))
    orphan = engine.issue(request_for(*scopes))  # issued, then the broker "crashed" before storing it
    assert make_engine(reconcile_grace_seconds=3600).reconcile([live.handle]) == 0  # too young to judge
    assert engine.reconcile([live.handle]) == 1
    assert client_for(orphan).read_first(topics["mine"]).error == LOGIN_REFUSED
    assert client_for(live).read_first(topics["mine"]).ok
    admin = KafkaAdmin(admin_settings(kafka_sasl), timeout_seconds=30)
    try:
        users = admin.users()
    finally:
        admin.close()
    assert kafka_sasl[1] in users  # the admin itself, outside the prefix, untouched
    assert {u for u in users if u.startswith(user_prefix)} == {live.username}
    assert engine.reconcile([live.handle]) == 0


def test_a_handle_naming_a_user_not_of_the_engines_making_is_refused(
        engine: KafkaEngine, kafka_sasl: Sasl) -> None:
    for user in (kafka_sasl[1], "alice", engine.config.user_prefix + "no-mark"):
        with pytest.raises(EngineError, match="not a user of this engine's making"):
            engine.revoke(UserHandle(user).encode())


def test_bad_scopes_are_refused_before_anything_is_created(engine: KafkaEngine) -> None:
    for scopes in ((), ("kafka:topic:*:READ",), ("kafka:topic:logs*:READ",), ("kafka:topic:t:ALL",),
                   ("postgres:db:public.a:SELECT",)):
        with pytest.raises(ScopeError):
            engine.issue(request_for(*scopes))


def test_prefixed_scopes_when_allowed_cover_every_topic_under_the_prefix(
        make_engine: Callable[..., KafkaEngine], topics: dict[str, str],
        client_for: Callable[..., LeaseClient]) -> None:
    engine = make_engine(allow_prefixed=True)
    mine = topics["mine"]
    credential = engine.issue(request_for(f"kafka:topic:{mine[:-3]}*:READ", "kafka:group:jitsec-kafka-test"))
    client = client_for(credential)
    assert client.read_first(mine).ok
    assert client.read_first(topics["other"]).error == "TOPIC_AUTHORIZATION_FAILED"


def test_a_cluster_that_does_not_answer_is_a_transient_error(make_engine: Callable[..., KafkaEngine]) -> None:
    engine = make_engine(bootstrap_servers="127.0.0.1:9", timeout_seconds=2)
    with pytest.raises(TransientEngineError, match="not issued") as raised:
        engine.issue(request_for("kafka:topic:t:READ"))
    assert "jitkf_" not in str(raised.value)


def test_an_admin_without_the_right_is_a_permanent_error_and_leaves_no_user(
        make_engine: Callable[..., KafkaEngine], kafka_sasl: Sasl, user_prefix: str) -> None:
    admin = KafkaAdmin(admin_settings(kafka_sasl), timeout_seconds=30)
    weak = f"jitsec-weak-admin-{uuid.uuid4().hex[:8]}"  # a SCRAM user with no ACL at all
    weak_password = mint(CredentialKind.KAFKA_PASSWORD)
    admin.create_users([NewUser(weak, weak_password, 4096, ())])
    try:
        engine = make_engine(weak_password, admin_username=weak, admin_mechanism="SCRAM-SHA-512")
        with pytest.raises(EngineError, match="AUTHORIZATION_FAILED") as raised:
            engine.issue(request_for("kafka:topic:t:READ"))
        assert not isinstance(raised.value, TransientEngineError)
        assert weak_password not in str(raised.value)
        assert not [user for user in admin.users() if user.startswith(user_prefix)]
    finally:
        admin.delete_user(weak)
        admin.close()
