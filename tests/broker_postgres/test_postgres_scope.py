"""The scope grammar ``postgres:<database>:<schema>.<table>:<PRIVILEGE>``: what parses, what is refused,
and that any names at all survive a render/parse round trip (hostile ones included)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jitsec.broker import errors
from jitsec.broker.engines.postgres_scope import (
    MAX_IDENTIFIER_BYTES,
    PostgresScope,
    Privilege,
    ScopeError,
    parse_scope,
    quote_name,
)

pytestmark = pytest.mark.postgres


def test_a_table_scope_parses_into_its_parts() -> None:
    scope = parse_scope("postgres:shop:public.orders:SELECT")
    assert scope == PostgresScope("shop", "public", "orders", Privilege.SELECT)
    assert not scope.is_schema_wide


def test_quoted_names_carry_separators_quotes_and_case() -> None:
    scope = parse_scope('postgres:"my:db":"Odd.Schema"."ta""ble; DROP":INSERT')
    assert scope == PostgresScope("my:db", "Odd.Schema", 'ta"ble; DROP', Privilege.INSERT)


def test_schema_wide_scope_needs_policy_consent() -> None:
    with pytest.raises(ScopeError, match="schema-wide"):
        parse_scope("postgres:shop:public.*:SELECT")
    scope = parse_scope("postgres:shop:public.*:SELECT", allow_schema_wide=True)
    assert scope.is_schema_wide and scope.table is None


@pytest.mark.parametrize("text, reason", [
    ("token:shop:public.orders:SELECT", "does not start"),
    ("postgres:shop:public.orders:select", "unknown privilege"),
    ("postgres:shop:public.orders:GRANT", "unknown privilege"),
    ("postgres:shop:public.orders:ALL", "unknown privilege"),
    ("postgres:shop:orders:SELECT", "expected '.'"),
    ("postgres:shop:public.orders", "expected ':'"),
    ("postgres::public.orders:SELECT", "empty database"),
    ("postgres:shop:public.orders:SELECT:extra", "trailing"),
    ('postgres:shop:"public.orders:SELECT', "unterminated"),
    ("postgres:shop:public.a b:SELECT", "expected ':'"),
    ("postgres:shop:public.\"a\x00b\":SELECT", "NUL"),
    ("postgres:shop:public." + "t" * 64 + ":SELECT", "longer than 63 bytes"),
])
def test_bad_scopes_are_refused_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(ScopeError, match=reason):
        parse_scope(text, allow_schema_wide=True)


def test_scope_errors_are_the_brokers_422() -> None:
    with pytest.raises(errors.ScopeError) as caught:
        parse_scope("postgres:x")
    assert caught.value.status == 422


_names = st.text(st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), min_size=1).filter(
    lambda n: len(n.encode("utf-8")) <= MAX_IDENTIFIER_BYTES)


@given(_names, _names, st.one_of(st.none(), _names), st.sampled_from(list(Privilege)))
def test_any_names_round_trip_through_render_and_parse(
    database: str, schema: str, table: str | None, privilege: Privilege
) -> None:
    scope = PostgresScope(database, schema, table, privilege)
    assert parse_scope(scope.render(), allow_schema_wide=True) == scope


@given(st.text())
def test_any_text_parses_canonically_or_fails_with_a_scope_error(text: str) -> None:
    try:
        scope = parse_scope(text, allow_schema_wide=True)
    except ScopeError:
        return
    assert parse_scope(scope.render(), allow_schema_wide=True) == scope


def test_plain_names_stay_bare_and_odd_ones_are_quoted() -> None:
    assert quote_name("orders") == "orders"
    assert quote_name("a.b") == '"a.b"'
    assert quote_name('a"b') == '"a""b"'
    assert quote_name("*") == '"*"'
