"""A JSON field is read with its own key, so a value that is a secret only by its key is found."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jitsec.connectors.sources.json_fields import field_text, string_fields
from jitsec.connectors.sources.kafka import value_fields
from jitsec.scanner.engine import Scanner
from jitsec.scanner.fingerprint import Fingerprinter
from jitsec.scanner.ruleset import load_ruleset

from jitsec.kernel.records import Chunk, KafkaOrigin

PASSWORD = "Zq8#vR2!mK9pL4wXy"

plain_key = st.from_regex(r"[A-Za-z_@][A-Za-z0-9_@\-]{0,12}", fullmatch=True)


@pytest.fixture(scope="module")
def scanner() -> Scanner:
    return Scanner(load_ruleset(), Fingerprinter(b"field-context-" * 3))


@given(parents=st.lists(plain_key, max_size=3), key=plain_key,
       indexes=st.lists(st.integers(0, 9), max_size=2), value=st.text(max_size=40))
def test_a_field_is_read_as_its_own_key_and_value(parents: list[str], key: str, indexes: list[int],
                                                   value: str) -> None:
    path = ".".join([*parents, key]) + "".join(f"[{i}]" for i in indexes)
    assert field_text(path, value) == f"{key}: {value}".encode("utf-8", "surrogatepass")


def test_the_document_itself_and_bracketed_keys_give_the_value_alone() -> None:
    assert [field_text(path, value) for path, value in string_fields({"a\nb": "v", "c": ["w"]})] == [
        b"v", b"c: w"]
    assert [field_text(path, value) for path, value in string_fields("top")] == [b"top"]


@pytest.mark.parametrize("document", [
    {"db": {"password": PASSWORD}},
    {"env": [{"name": "x", "password": PASSWORD}]},
    {"config": {"password": PASSWORD, "user": "svc"}},
])
def test_a_password_known_only_by_its_key_is_found(scanner: Scanner, document: dict) -> None:
    fields = value_fields(json.dumps(document).encode(), "auto", 1 << 20, lambda kind, detail: None)
    found = []
    for path, data in fields:
        found += [(path, f.rule_id) for f in scanner.scan_bytes(data + b"\n", KafkaOrigin("t", 0, 0, path))]
    assert [rule for _, rule in found] == ["generic-password"]
    assert found[0][0].endswith("password")
    chunks = [Chunk(data + b"\n", KafkaOrigin("t", 0, 0, path), whole=True) for path, data in fields]
    fingerprints = {f.fingerprint for findings in scanner.scan_whole(chunks) for f in findings}
    assert fingerprints == {scanner.fingerprinter.fingerprint(PASSWORD)}
