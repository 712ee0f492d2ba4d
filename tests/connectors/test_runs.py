"""A batch of records as few chunks: each record, or each of its JSON string fields, a part of one chunk
per partition or index, read exactly as it was when each was a chunk of its own."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st
from jitsec.connectors.sources.json_fields import field_columns, field_text, string_fields, terminated
from jitsec.connectors.sources.runs import RunBuilder

from jitsec.kernel.records import Chunk, ElasticsearchOrigin, KafkaOrigin

keys = st.one_of(st.text(max_size=5), st.sampled_from(["a", "b.c", "", "x-y", "@t", "_k", "1a", "headers"]))
documents = st.recursive(
    st.one_of(st.text(max_size=8), st.integers(), st.none(), st.booleans(), st.floats(allow_nan=False)),
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=4)),
    max_leaves=30)


@settings(max_examples=400, deadline=None)
@given(documents)
def test_field_columns_are_string_fields_read_with_their_own_key(document: object) -> None:
    paths, texts = field_columns(document)
    assert list(zip(paths, texts, strict=True)) == [
        (path, field_text(path, value).decode("utf-8", "surrogatepass"))
        for path, value in string_fields(document)]


def test_field_columns_of_a_deep_document_fall_back_to_the_iterative_walk() -> None:
    document: object = {"a": "x"}
    for _ in range(200):
        document = {"k": [document, "s"]}
    paths, _texts = field_columns(document)
    assert paths == [path for path, _ in string_fields(document)]


def _expanded(chunks: list[Chunk]) -> list[tuple[object, bytes]]:
    return [(part.origin, part.data) for chunk in chunks for part in chunk.split_parts()]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.binary(min_size=1, max_size=40), documents), max_size=12),
       st.sampled_from([16, 64, 1 << 20]))
def test_a_run_holds_what_one_chunk_per_value_or_field_held(values: list[object], piece_bytes: int) -> None:
    builder = RunBuilder(piece_bytes, read_at=1.0)
    builder.group(KafkaOrigin("t", 3, 0))
    expected: list[tuple[object, bytes]] = []
    for offset, value in enumerate(values):
        if value is None:
            builder.record(offset)
            continue
        if isinstance(value, bytes):
            builder.value(offset, value)
            data, origin = terminated(value), KafkaOrigin("t", 3, offset)
            expected += [(origin, data[at:at + piece_bytes]) for at in range(0, len(data), piece_bytes)] \
                if len(data) > piece_bytes else [(origin, data)]
            continue
        builder.fields(offset, *field_columns(value))
        for path, text in string_fields(value):
            data, origin = terminated(field_text(path, text)), KafkaOrigin("t", 3, offset, path)
            expected += [(origin, data[at:at + piece_bytes]) for at in range(0, len(data), piece_bytes)] \
                if len(data) > piece_bytes else [(origin, data)] if data else []
    chunks = builder.finish()
    assert [item for item in _expanded(chunks) if item[1]] == expected
    assert len(builder.ends) == len(values)
    assert builder.ends == sorted(builder.ends) and all(0 <= end < len(chunks) for end in builder.ends)
    for chunk in chunks:
        assert chunk.read_at == 1.0
        if chunk.parts:
            assert chunk.whole and chunk.data.endswith(b"\n") and chunk.parts[0][0] == 0


def test_values_in_a_row_are_one_chunk_and_a_large_one_ends_the_run() -> None:
    builder = RunBuilder(64, read_at=0.0)
    builder.group(KafkaOrigin("t", 0, 0))
    builder.values([0, 1], [b"first", b"second"])
    builder.value(2, b"y" * 100)
    builder.record(3)  # a tombstone: nothing to scan, handled with the next chunk
    builder.fields(4, *field_columns(json.loads('{"msg": "hello", "n": 1, "ctx": {"a.b": "c"}}')))
    chunks = builder.finish()
    assert [(c.origin, c.data, c.parts) for c in chunks] == [
        (KafkaOrigin("t", 0, 0), b"first\nsecond\n", ((0, 0, None), (6, 1, None))),
        (KafkaOrigin("t", 0, 2), b"y" * 64, ()),
        (KafkaOrigin("t", 0, 2), b"y" * 36 + b"\n", ()),
        (KafkaOrigin("t", 0, 3), b"msg: hello\nc\n", ((0, 4, "msg"), (11, 4, 'ctx["a.b"]'))),
    ]
    assert builder.ends == [0, 0, 2, 3, 3]


def test_a_record_with_nothing_to_scan_still_has_a_chunk() -> None:
    builder = RunBuilder(1 << 20, read_at=0.0)
    builder.group(ElasticsearchOrigin("logs", "d1"))
    builder.fields("d1", *field_columns({"n": 1}))
    assert builder.finish() == [Chunk(b"", ElasticsearchOrigin("logs", "d1"), read_at=0.0)]
    assert builder.ends == [0]


def test_non_ascii_fields_are_located_in_bytes() -> None:
    builder = RunBuilder(1 << 20, read_at=0.0)
    builder.group(ElasticsearchOrigin("logs", "d1"))
    builder.fields("d1", *field_columns({"a": "café", "b": "x\n", "c": ""}))
    [chunk] = builder.finish()
    assert chunk.data == "a: café\nb: x\nc: \n".encode()
    assert [(p.origin, p.data) for p in chunk.split_parts()] == [
        (ElasticsearchOrigin("logs", "d1", "a"), "a: café\n".encode()),
        (ElasticsearchOrigin("logs", "d1", "b"), b"b: x\n"),
        (ElasticsearchOrigin("logs", "d1", "c"), b"c: \n")]
