"""The Kafka scope grammar: every scope it accepts renders back to itself, and what it refuses names why."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jitsec.broker.engines.kafka_scope import KafkaScope, Operation, ResourceKind, ScopeError, parse_scope

NAMES = st.text(alphabet="abcXYZ019._-", min_size=1, max_size=40).filter(lambda n: n not in {".", ".."})


@given(name=NAMES, operation=st.sampled_from(list(Operation)), prefixed=st.booleans())
def test_topic_scopes_round_trip(name: str, operation: Operation, prefixed: bool) -> None:
    scope = KafkaScope(ResourceKind.TOPIC, name, operation, prefixed)
    assert parse_scope(scope.render(), allow_prefixed=True) == scope


@given(name=NAMES, prefixed=st.booleans())
def test_group_scopes_round_trip_and_mean_read(name: str, prefixed: bool) -> None:
    parsed = parse_scope(f"kafka:group:{name}{'*' if prefixed else ''}", allow_prefixed=True)
    assert parsed == KafkaScope(ResourceKind.GROUP, name, Operation.READ, prefixed)


@given(text=st.text(max_size=60))
def test_any_text_is_parsed_or_refused_with_a_scope_error(text: str) -> None:
    try:
        scope = parse_scope(text, allow_prefixed=True)
    except ScopeError:
        return
    assert scope.render() == text


@pytest.mark.parametrize(("text", "reason"), [
    ("kafka:topic:*:READ", "never granted"),
    ("kafka:group:*", "never granted"),
    ("kafka:topic:logs*:READ", "not allowed by the engine's settings"),
    ("kafka:topic:orders:ALL", "unknown operation 'ALL'"),
    ("kafka:topic:orders:read", "unknown operation 'read'"),
    ("kafka:topic:orders", "kafka:topic:<name>:READ or :WRITE"),
    ("kafka:topic:orders:READ:x", "kafka:topic:<name>:READ or :WRITE"),
    ("kafka:group:g:READ", "a group scope is kafka:group:<name>"),
    ("kafka:cluster:x", "expected 'topic' or 'group'"),
    ("kafka:topic::READ", "empty topic name"),
    ("kafka:topic:ord ers:READ", "found ' '"),
    ("kafka:topic:lo*gs:READ", "found '*'"),
    ("kafka:topic:..:READ", "not a valid topic name"),
    ("kafka:topic:" + "a" * 250 + ":READ", "longer than 249"),
    ("postgres:db:public.t:SELECT", "does not start with 'kafka:'"),
])
def test_refusals_name_the_problem(text: str, reason: str) -> None:
    with pytest.raises(ScopeError) as raised:
        parse_scope(text)
    assert reason in str(raised.value)
