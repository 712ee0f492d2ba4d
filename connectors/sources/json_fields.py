"""The string fields of a JSON document, each with a path, for sources that locate findings by field.

Kafka JSON values and Elasticsearch ``_source`` documents are scanned field by field: a secret in
``{"request": {"headers": ["Authorization: jit_…"]}}`` is reported at ``request.headers[0]``, which a
reader can paste into a query, and is read as ``name: value`` so that its key gives the value its
context. Only strings are yielded: numbers, booleans and nulls cannot hold a credential. Keys that
are not plain identifiers are written in brackets (``["a.b"]``) so that every path names one field
unambiguously.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from jitsec.kernel.records import Chunk, Origin

ROOT = "$"  # the path of a document that is itself a string
_PLAIN_KEY = re.compile(r"^[A-Za-z_@][A-Za-z0-9_@\-]*$")
_OWN_KEY = re.compile(r"(?:^|\.)([A-Za-z_@][A-Za-z0-9_@\-]*)(?:\[\d+\])*$")


@functools.lru_cache(maxsize=4096)  # log events repeat one schema: the same paths, record after record
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


def field_text(path: str, value: str) -> bytes:
    """What the scanner reads for one string field: ``name: value`` in UTF-8, where ``name`` is the
    field's own key (``password`` for ``db.password``, ``headers`` for ``headers[2]``).

    The key is the context a value needs: ``{"password": "Zq8#vR2!mK9pL4w"}`` holds a leak only
    because of its key, and generic rules look for ``password: …``. Offsets and columns count in this
    text. A path without a plain key (the document itself, a bracketed key) gives the value alone.
    Lone surrogates (from ``\\ud800`` escapes) pass through.
    """
    prefix = _own_key_prefix(path)
    return (prefix + value if prefix else value).encode("utf-8", "surrogatepass")


@functools.lru_cache(maxsize=4096)
def _own_key_prefix(path: str) -> str:
    name = _OWN_KEY.search(path)
    return f"{name.group(1)}: " if name else ""


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


def field_chunks(
    fields: Iterable[tuple[str | None, bytes]], origin: Callable[[str | None], Origin], piece_bytes: int,
    read_at: float,
) -> list[Chunk]:
    """Chunks of one record or document: one per field, ``whole`` (a batched scan may read it with
    the others), or, for a field larger than ``piece_bytes``, a stream of pieces. ``origin(field)``
    locates each."""
    chunks: list[Chunk] = []
    for field, raw in fields:
        data = terminated(raw)
        where = origin(field)
        if len(data) <= piece_bytes:
            chunks.append(Chunk(data=data, origin=where, read_at=read_at, whole=bool(data)))
            continue
        chunks.extend(Chunk(data=piece, origin=where, offset=at, line=line, read_at=read_at)
                      for at, line, piece in raw_pieces(data, piece_bytes))
    return chunks
