"""What the console's templates are given: the list's query read and written back, and broker
credentials masked in free text (property tests over arbitrary input)."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jitsec.broker.console.views import FILTER_FIELDS, MAX_FILTER_CHARS, BadFilter, masked, read_query

from jitsec.kernel.credential_format import CredentialKind, mint
from jitsec.kernel.redaction import preview

values = st.text(st.characters(blacklist_categories=("Cs",)), max_size=300)


@given(st.dictionaries(st.sampled_from([*FILTER_FIELDS, "cursor", "other"]),
                       st.one_of(values, st.sampled_from(["open", "acknowledged", "critical", "low"]))))
def test_any_query_is_read_or_refused_and_writes_back_the_same(params: dict[str, str]) -> None:
    try:
        query = read_query(params)
    except BadFilter:
        assert params.get("status", "").strip() or params.get("severity", "").strip()
        return
    assert all(len(value) <= MAX_FILTER_CHARS for value in query.values.values())
    again = read_query(dict(parse_qsl(query.query_string(query.cursor))))
    assert again.values == query.values and again.filters == query.filters and again.cursor == query.cursor


@pytest.mark.parametrize("kind", list(CredentialKind))
@given(before=values, after=values)
def test_a_broker_credential_anywhere_in_text_is_shown_as_its_preview(kind: CredentialKind, before: str,
                                                                      after: str) -> None:
    credential = mint(kind)
    shown = masked(f"{before}{credential}{after}")
    assert credential not in shown and preview(credential) in shown


@given(values)
def test_text_without_a_valid_credential_is_left_alone(text: str) -> None:
    if "jit" not in text:
        assert masked(text) == text
    forged = "jit_" + "A" * 46  # the shape, without a valid checksum
    assert masked(forged) == forged
