"""The string fields of a JSON document, each with a path, for sources that locate findings by field.

Kafka JSON values and Elasticsearch ``_source`` documents are scanned field by field: a secret in
``{"request": {"headers": ["Authorization: jit_…"]}}`` is reported at ``request.headers[0]``, which a
reader can paste into a query. Only strings are yielded: numbers, booleans and nulls cannot hold a
credential. Keys that are not plain identifiers are written in brackets (``["a.b"]``) so that every
path names one field unambiguously.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

ROOT = "$"  # the path of a document that is itself a string
_PLAIN_KEY = re.compile(r"^[A-Za-z_@][A-Za-z0-9_@\-]*$")


def child_path(parent: str, key: str) -> str:
    """The path of ``key`` inside the object at ``parent`` (``""`` is the document itself)."""
    if _PLAIN_KEY.match(key):
        return f"{parent}.{key}" if parent else key
    escaped = key.replace("\\", "\\\\").replace('"', '\\"')
    return f'{parent}["{escaped}"]'


def string_fields(document: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """``(path, value)`` for every string in ``document``, depth first, in document order.

    Iterative, so a hostile, deeply nested document cannot exhaust the interpreter's stack.
    """
    stack: list[tuple[str, Any]] = [(path, document)]
    while stack:
        where, node = stack.pop()
        if isinstance(node, str):
            yield (where or ROOT, node)
        elif isinstance(node, dict):
            children = [(child_path(where, str(key)), value) for key, value in node.items()]
            stack.extend(reversed(children))
        elif isinstance(node, list):
            stack.extend(reversed([(f"{where}[{index}]", value) for index, value in enumerate(node)]))


def encode_field(value: str) -> bytes:
    """UTF-8 bytes of a decoded JSON string; lone surrogates (from ``\\ud800`` escapes) pass through."""
    return value.encode("utf-8", "surrogatepass")


def raw_pieces(data: bytes, piece_bytes: int) -> Iterator[tuple[int, int, bytes]]:
    """``(byte offset, line number, piece)`` slices of ``data``; one piece when it is small.

    A huge value is handed to the scanner as one stream of pieces rather than one giant chunk.
    """
    if len(data) <= piece_bytes:
        yield 0, 1, data
        return
    line = 1
    for start in range(0, len(data), piece_bytes):
        piece = data[start : start + piece_bytes]
        yield start, line, piece
        line += piece.count(b"\n")


def terminated(data: bytes) -> bytes:
    """``data`` ending with a newline (one is added when missing; empty data stays empty).

    A record or field is a complete unit: the newline lets the scanner's stream scan it at once instead
    of waiting for more bytes of the same origin, which for a record-per-origin source would never come
    (a leak in the last record of a quiet topic would wait for the next record to be reported).
    """
    return data if not data or data.endswith(b"\n") else data + b"\n"
