"""Cheap extra passes over lines that show an encoding marker.

Secrets in logs are often encoded: a PEM inside a JSON string (``\\n`` escapes), a password in a
URL (``%40``), credentials in ``Authorization: Basic <base64>``. Only lines carrying such a marker are
decoded; the decoded line is scanned again and each finding is mapped back to the original line.
A line is decoded only when it also holds a keyword of some rule (the engine checks), so the
URL-encoded query strings of an access log cost one marker search, not a decode each.
Text is handled as latin-1 (one character per byte) so that positions are byte offsets.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import unquote

from jitsec.kernel.lazy_regex import LazyPattern

_JSON_STRING = LazyPattern(r'"((?:[^"\\\n]|\\.)*\\[nrtbfu/](?:[^"\\\n]|\\.)*)"')
_URL_TOKEN = LazyPattern(r"[^\s\"'<>]*%[0-9A-Fa-f]{2}[^\s\"'<>]*")
_JSON_ESCAPE = LazyPattern(r'\\(?:u[0-9A-Fa-f]{4}|["\\/bfnrt])')
_PERCENT_RUN = LazyPattern(r"(?:%[0-9A-Fa-f]{2})+")
_BASIC = LazyPattern(r"(?i)\bbasic\s+(?P<b64>[A-Za-z0-9+/]{8,}={0,2})")
_MARKER = re.compile(rb"%[0-9A-Fa-f]{2}|\\[nrtbfu/]|[Bb]asic ")


@dataclass(frozen=True, slots=True)
class DecodedLine:
    """``text`` with encoded parts replaced; ``segments`` maps them back:
    (new_start, new_end, orig_start, orig_end), in order."""

    kind: str
    text: str
    segments: tuple[tuple[int, int, int, int], ...]

    def original_position(self, position: int) -> int:
        """Where ``position`` in the decoded text came from in the original line."""
        delta = 0
        for new_start, new_end, orig_start, orig_end in self.segments:
            if position < new_start:
                break
            if position < new_end:
                return orig_start
            delta = orig_end - new_end
        return position + delta


def marker_lines(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each line of ``data`` carrying an encoding marker, in order."""
    lines: list[tuple[int, int]] = []
    search = _MARKER.search
    match = search(data)
    while match is not None:
        position = match.start()
        start = data.rfind(b"\n", 0, position) + 1
        end = data.find(b"\n", position)
        if end < 0:
            lines.append((start, len(data)))
            break
        lines.append((start, end))
        match = search(data, end)
    return lines


def decode_variants(line: str) -> list[DecodedLine]:
    """Every decoding of ``line`` that changes it: JSON strings, URL-encoded tokens, Basic credentials."""
    variants = []
    for kind, finder in (("json", _json_parts), ("url", _url_parts), ("basic", _basic_parts)):
        parts = list(finder(line))
        if parts:
            variants.append(_replace(kind, line, parts))
    return variants


def _json_parts(line: str) -> Iterator[tuple[int, int, str]]:
    """Each escape inside a JSON string that holds a marker escape, decoded on its own, so that
    positions outside escapes map back exactly."""
    if "\\" not in line:
        return
    for string in _JSON_STRING.finditer(line):
        base = string.start(1)
        for escape in _JSON_ESCAPE.finditer(string[1]):
            try:
                decoded = json.loads(f'"{escape[0]}"')
            except ValueError:
                continue
            yield base + escape.start(), base + escape.end(), decoded


def _url_parts(line: str) -> Iterator[tuple[int, int, str]]:
    """Each run of ``%XX`` triplets inside a token, decoded on its own."""
    if "%" not in line:
        return
    for token in _URL_TOKEN.finditer(line):
        for run in _PERCENT_RUN.finditer(token[0]):
            yield token.start() + run.start(), token.start() + run.end(), unquote(run[0], encoding="latin-1")


def _basic_parts(line: str) -> Iterator[tuple[int, int, str]]:
    for match in _BASIC.finditer(line):
        try:
            raw = base64.b64decode(match["b64"], validate=True)
        except (binascii.Error, ValueError):
            continue
        decoded = raw.decode("latin-1")
        if ":" in decoded and decoded.isprintable():
            yield match.start("b64"), match.end("b64"), decoded


def _replace(kind: str, line: str, parts: list[tuple[int, int, str]]) -> DecodedLine:
    pieces: list[str] = []
    segments: list[tuple[int, int, int, int]] = []
    cursor = 0
    length = 0
    for start, end, replacement in parts:
        pieces.append(line[cursor:start])
        length += start - cursor
        pieces.append(replacement)
        segments.append((length, length + len(replacement), start, end))
        length += len(replacement)
        cursor = end
    pieces.append(line[cursor:])
    return DecodedLine(kind=kind, text="".join(pieces), segments=tuple(segments))
