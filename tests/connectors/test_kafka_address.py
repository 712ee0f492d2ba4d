"""The kafka:// address grammar and the pure value splitting, without a broker."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jitsec.connectors.address import SourceAddressError
from jitsec.connectors.sources.json_fields import raw_pieces
from jitsec.connectors.sources.kafka import (
    DEFAULT_GROUP,
    KafkaAddress,
    KafkaAddressError,
    parse_kafka_address,
    value_fields,
)

topic_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-",
                      min_size=1, max_size=40)


def test_parses_host_port_topics_and_group() -> None:
    parsed = parse_kafka_address("kafka://127.0.0.1:9092/app-logs,audit.events?group=scanners")
    assert parsed == KafkaAddress("127.0.0.1:9092", ("app-logs", "audit.events"), "scanners")


def test_group_defaults_and_options_parse() -> None:
    parsed = parse_kafka_address("kafka://broker:9092/t?format=json&start=latest")
    assert (parsed.group, parsed.value_format, parsed.start) == (DEFAULT_GROUP, "json", "latest")


@pytest.mark.parametrize(
    "address",
    [
        "kafka://127.0.0.1/topic",  # no port
        "kafka://:9092/topic",  # no host
        "kafka://127.0.0.1:9092/",  # no topic
        "kafka://127.0.0.1:9092/bad topic",
        "kafka://127.0.0.1:9092/t?group=",
        "kafka://127.0.0.1:9092/t?group=a&group=b",
        "kafka://127.0.0.1:9092/t?format=xml",
        "kafka://127.0.0.1:9092/t?start=middle",
        "kafka://127.0.0.1:9092/t?colour=blue",
        "kafka://127.0.0.1:99999/t",
        "http://127.0.0.1:9092/t",
    ],
)
def test_rejects_bad_addresses_with_a_clear_error(address: str) -> None:
    with pytest.raises(KafkaAddressError, match=r"kafka|topic|group|format|start|parameter|port"):
        parse_kafka_address(address)
    assert issubclass(KafkaAddressError, SourceAddressError)


@given(topics=st.lists(topic_names, min_size=1, max_size=5), group=topic_names,
       port=st.integers(min_value=1, max_value=65535))
def test_round_trips_any_valid_address(topics: list[str], group: str, port: int) -> None:
    address = f"kafka://localhost:{port}/{','.join(topics)}?group={group}"
    parsed = parse_kafka_address(address)
    assert parsed.bootstrap == f"localhost:{port}"
    assert parsed.topics == tuple(topics)
    assert parsed.group == group


def _fields(value: bytes | None, fmt: str = "auto", limit: int = 1 << 20) -> tuple[list, list[str]]:
    kinds: list[str] = []
    out = value_fields(value, fmt, limit, lambda kind, _detail: kinds.append(kind))  # type: ignore[arg-type]
    return out, kinds


def test_json_values_yield_one_entry_per_string_field_by_path() -> None:
    value = json.dumps({"msg": "hello", "n": 3, "req": {"headers": ["a", {"x.y": "b"}]}}).encode()
    fields, kinds = _fields(value)
    assert fields == [
        ("msg", b"msg: hello"), ("req.headers[0]", b"headers: a"), ('req.headers[1]["x.y"]', b"b")]
    assert kinds == []


@pytest.mark.parametrize(
    ("value", "fmt", "kind"),
    [
        (b"\x00\x01binary\x00", "auto", "binary"),
        (b"caf\xe9 latin-1 text", "auto", "invalid_utf8"),
        (b'{"open": ', "auto", "malformed_json"),
        (b"plain text", "json", "malformed_json"),
        (b'{"k": "\xff"}', "json", "invalid_utf8"),
    ],
)
def test_poison_values_are_reported_and_kept_raw(value: bytes, fmt: str, kind: str) -> None:
    fields, kinds = _fields(value, fmt)
    assert fields == [(None, value)]
    assert kinds == [kind]


def test_oversized_json_is_not_parsed_but_scanned_raw() -> None:
    value = json.dumps({"big": "x" * 5000}).encode()
    fields, kinds = _fields(value, limit=1000)
    assert fields == [(None, value)]
    assert kinds == ["oversized"]


def test_text_mode_never_parses_and_empty_values_still_yield_once() -> None:
    assert _fields(b'{"a": "b"}', "text") == ([(None, b'{"a": "b"}')], [])
    assert _fields(None) == ([(None, b"")], [])
    assert _fields(b"[1, 2, true]") == ([(None, b"")], [])


def test_deeply_nested_json_does_not_crash() -> None:
    value = b"[" * 100_000 + b"]" * 100_000
    fields, kinds = _fields(value, limit=1 << 21)
    assert fields == [(None, value)]
    assert kinds == ["malformed_json"]


@given(data=st.binary(max_size=5000), size=st.integers(min_value=1, max_value=700))
def test_raw_pieces_cover_every_byte_once_with_line_numbers(data: bytes, size: int) -> None:
    pieces = list(raw_pieces(data, size))
    assert b"".join(piece for _, _, piece in pieces) == data
    for offset, line, piece in pieces:
        assert data[offset : offset + len(piece)] == piece
        assert line == data[:offset].count(b"\n") + 1
