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
from collections.abc import Callable, Iterator
from typing import Any

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


def string_fields(document: Any, path: str = "") -> list[tuple[str, str]]:
    """``(path, value)`` for every string in ``document``, depth first, in document order.

    Recursive for the usual few levels (fast), iterative below ``_MAX_RECURSION`` levels, so a
    hostile, deeply nested document cannot exhaust the interpreter's stack.
    """
    found: list[tuple[str, str]] = []
    _walk(document, path, found, 0)
    return found


_MAX_RECURSION = 32


def _walk(node: Any, where: str, found: list[tuple[str, str]], depth: int) -> None:
    if isinstance(node, str):
        found.append((where or ROOT, node))
    elif depth >= _MAX_RECURSION:
        found.extend(_walk_iteratively(node, where))
    elif isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, str):
                found.append((child_path(where, key if isinstance(key, str) else str(key)), value))
            elif isinstance(value, dict | list):
                _walk(value, child_path(where, key if isinstance(key, str) else str(key)), found, depth + 1)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            if isinstance(value, str):
                found.append((f"{where}[{index}]", value))
            elif isinstance(value, dict | list):
                _walk(value, f"{where}[{index}]", found, depth + 1)


def _walk_iteratively(document: Any, path: str) -> Iterator[tuple[str, str]]:
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


def field_columns(document: Any) -> tuple[list[str], list[str]]:
    """The paths and the texts (``field_text``, as ``str``, not newline-terminated) of every string
    field of ``document``, in document order: ``string_fields`` and ``field_text`` at once.

    The fast path of sources: one walk that carries each container's path and own-key prefix and
    remembers them per (parent, key) (log events repeat one schema), instead of a path then a prefix
    per field. Deeper than ``_MAX_RECURSION`` levels it falls back to ``string_fields``.
    """
    paths: list[str] = []
    texts: list[str] = []
    if isinstance(document, dict):
        _walk_object(document, "", paths.append, texts.append, 0)
    elif isinstance(document, list):
        _walk_array(document, "", "", (paths.append, texts.append), 0)
    elif isinstance(document, str):
        paths.append(ROOT)
        texts.append(document)
    return paths, texts


_CHILDREN: dict[str, dict[str, tuple[str, str]]] = {}  # parent path -> key -> (path, own-key prefix)
_CHILDREN_MAX = 4096


def _children(parent: str) -> dict[str, tuple[str, str]]:
    children = _CHILDREN.get(parent)
    if children is None:
        if len(_CHILDREN) >= _CHILDREN_MAX:  # not one schema after all: start over rather than grow
            _CHILDREN.clear()
        children = _CHILDREN[parent] = {}
    return children


def _child(children: dict[str, tuple[str, str]], parent: str, key: Any) -> tuple[str, str]:
    if len(children) >= _CHILDREN_MAX:
        children.clear()
    path = child_path(parent, key if isinstance(key, str) else str(key))
    entry = children[key] = (path, _own_key_prefix(path))
    return entry


Append = Callable[[str], None]


def _walk_object(node: dict[Any, Any], where: str, path_to: Append, text_to: Append, depth: int) -> None:
    """The string fields under the object ``node`` at ``where``, in document order, handed to
    ``path_to`` and ``text_to`` (the ``append`` of two lists)."""
    if depth >= _MAX_RECURSION:
        _walk_deep(node, where, path_to, text_to)
        return
    children = _CHILDREN.get(where) or _children(where)
    for key, value in node.items():
        entry = children.get(key) or _child(children, where, key)
        if type(value) is str:
            path_to(entry[0])
            text_to(entry[1] + value)
        elif type(value) is dict:
            _walk_object(value, entry[0], path_to, text_to, depth + 1)
        elif type(value) is list:
            _walk_array(value, entry[0], entry[1], (path_to, text_to), depth + 1)
        elif isinstance(value, str | dict | list):  # subclasses: rare, not from a JSON parser
            _walk_array([value], entry[0], entry[1], (path_to, text_to), depth, index_path=False)


def _walk_array(node: list[Any], where: str, prefix: str, to: tuple[Append, Append], depth: int, *,
                index_path: bool = True) -> None:
    """The same for the array ``node``, whose items are read with its own key (``prefix``).
    ``index_path`` False: ``node`` is a single value standing at ``where`` itself."""
    path_to, text_to = to
    if depth >= _MAX_RECURSION:
        _walk_deep(node, where, path_to, text_to)
        return
    for index, value in enumerate(node):
        path = f"{where}[{index}]" if index_path else where
        if isinstance(value, str):
            path_to(path)
            text_to(prefix + value)
        elif isinstance(value, dict):
            _walk_object(value, path, path_to, text_to, depth + 1)
        elif isinstance(value, list):
            _walk_array(value, path, prefix, to, depth + 1)


def _walk_deep(node: Any, where: str, path_to: Append, text_to: Append) -> None:
    for path, value in _walk_iteratively(node, where):
        path_to(path)
        text_to(field_text(path, value).decode("utf-8", "surrogatepass"))


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
