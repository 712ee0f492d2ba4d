"""The elasticsearch:// address grammar and the JSON field walk, without a server."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jitsec.connectors.address import SourceAddressError
from jitsec.connectors.sources.elasticsearch import (
    DEFAULT_TIMESTAMP,
    ElasticsearchAddress,
    ElasticsearchAddressError,
    parse_elasticsearch_address,
)
from jitsec.connectors.sources.json_fields import ROOT, string_fields


def test_parses_host_port_pattern_and_timestamp_field() -> None:
    assert parse_elasticsearch_address("elasticsearch://127.0.0.1:9200/logs-*") == ElasticsearchAddress(
        "http://127.0.0.1:9200", "logs-*", DEFAULT_TIMESTAMP)
    parsed = parse_elasticsearch_address("elasticsearch://es:9200/app,audit-*?timestamp=event.created")
    assert (parsed.index_pattern, parsed.timestamp_field) == ("app,audit-*", "event.created")


@pytest.mark.parametrize(
    "address",
    [
        "elasticsearch://127.0.0.1/logs",
        "elasticsearch://:9200/logs",
        "elasticsearch://127.0.0.1:9200/",
        "elasticsearch://127.0.0.1:9200/a/b",
        "elasticsearch://127.0.0.1:9200/bad name",
        "elasticsearch://127.0.0.1:9200/logs?timestamp=",
        "elasticsearch://127.0.0.1:9200/logs?size=5",
        "http://127.0.0.1:9200/logs",
    ],
)
def test_rejects_bad_addresses_with_a_clear_error(address: str) -> None:
    with pytest.raises(ElasticsearchAddressError, match=r"elasticsearch|pattern|timestamp|parameter|HOST"):
        parse_elasticsearch_address(address)
    assert issubclass(ElasticsearchAddressError, SourceAddressError)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=30,
)


@given(document=json_values)
def test_every_string_of_a_document_is_yielded_once(document: object) -> None:
    def strings(node: object) -> list[str]:
        if isinstance(node, str):
            return [node]
        if isinstance(node, dict):
            return [s for value in node.values() for s in strings(value)]
        if isinstance(node, list):
            return [s for value in node for s in strings(value)]
        return []

    found = list(string_fields(document))
    assert [value for _, value in found] == strings(document)
    paths = [path for path, _ in found]
    assert len(set(paths)) == len(paths)  # one path names one field


def test_paths_quote_keys_that_are_not_identifiers() -> None:
    document = json.loads('{"a": {"b.c": ["x", {"say \\"hi\\"": "y"}]}, "": "z"}')
    assert list(string_fields(document)) == [
        ('a["b.c"][0]', "x"),
        ('a["b.c"][1]["say \\"hi\\""]', "y"),
        ('[""]', "z"),
    ]
    assert list(string_fields("top")) == [(ROOT, "top")]
