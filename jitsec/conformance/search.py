"""Looking for secrets where none may be: the project's own scanner, plain and encoded.

Two passes over every byte searched:

1. Discovery (what an attacker gets): ``scanner.engine.Scanner`` on the raw bytes (it decodes
   URL-encoding, JSON escapes and Basic credentials itself), and again on every base64 or hex run
   decoded. Every candidate it confirms is returned, so 8.6 can try each one at the resource.
2. Known secrets (what must not be there): every secret the suite knows was issued, in plain, base64
   (all three alignments, standard and URL-safe alphabets), hex (both cases) and fully
   percent-encoded form, found with a plain byte search.

Hits are reported as ``preview`` + where + encoding; candidate values stay in memory.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from jitsec.conformance.model import Searched
from jitsec.kernel.credential_format import sha256_fingerprint
from jitsec.kernel.redaction import preview

if TYPE_CHECKING:
    from jitsec.scanner.engine import Scanner

# Bytes other than printable ASCII, tab, CR and LF become line breaks before the scanner sees them
# (like ``strings``): credentials are ASCII and keep their positions, while binary data (memory images,
# database pages) no longer forms megabyte-long "lines" for the line-based decoders to chew on.
_TO_LINES = bytes(b if (32 <= b < 127 or b in (9, 10, 13)) else 10 for b in range(256))
_BASE64_RUN = re.compile(rb"[A-Za-z0-9+/_-]{24,}={0,2}")
_HEX_RUN = re.compile(rb"(?:[0-9a-fA-F]{2}){16,}")
MAX_FILE_BYTES = 256 * 1024 * 1024
DECODE_LIMIT = 64 * 1024 * 1024  # decoding passes only over buffers up to this size (core dumps skip them)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A credential the scanner confirmed, held in memory for a resource check; ``repr`` is redacted."""

    value: str = field(repr=False)
    rule_id: str
    where: str
    encoding: str

    @property
    def shown(self) -> str:
        return f"{preview(self.value)} [{self.rule_id}] in {self.where} ({self.encoding})"


@dataclass(frozen=True, slots=True)
class KnownHit:
    sha256: str
    shown: str  # preview, where, encoding


def encoded_forms(secret: str) -> dict[str, tuple[bytes, ...]]:
    """The byte patterns a secret takes in each encoding the search covers."""
    raw = secret.encode("utf-8")
    forms: dict[str, tuple[bytes, ...]] = {"plain": (raw,)}
    b64: list[bytes] = []
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        for shift in range(3):  # the secret may start at any offset within a 3-byte group
            encoded = encode(b"\0" * shift + raw)
            skip = (0, 2, 3)[shift]
            end = ((shift + len(raw)) * 8) // 6
            b64.append(encoded[skip:end])
    forms["base64"] = tuple(dict.fromkeys(b64))
    forms["hex"] = (raw.hex().encode(), raw.hex().upper().encode())
    forms["url"] = ("".join(f"%{b:02X}" for b in raw).encode(), "".join(f"%{b:02x}" for b in raw).encode())
    return forms


class SecretSearch:
    """Scanner discovery plus a search for known secrets; one instance per test (holds the secrets)."""

    def __init__(self, scanner: Scanner, known: Iterable[str] = ()) -> None:
        self._scanner = scanner
        self._known = {s: encoded_forms(s) for s in known if s}

    def __repr__(self) -> str:
        return f"SecretSearch({len(self._known)} known secrets)"

    @property
    def known_values(self) -> frozenset[str]:
        return frozenset(self._known)

    def known_hits(self, data: bytes, where: str) -> list[KnownHit]:
        hits = []
        for secret, forms in self._known.items():
            for encoding, patterns in forms.items():
                if any(p in data for p in patterns):
                    hits.append(
                        KnownHit(sha256_fingerprint(secret), f"{preview(secret)} in {where} ({encoding})")
                    )
        return hits

    def candidates(self, data: bytes, where: str, *, decode: bool = True) -> list[Candidate]:
        data = data.translate(_TO_LINES)
        found = self._scan(data, where, "plain")
        if decode and len(data) <= DECODE_LIMIT:
            for encoding, decoded in _decoded_runs(data):
                found.extend(self._scan(decoded, where, encoding))
        unique: dict[tuple[str, str], Candidate] = {}
        for candidate in found:
            unique.setdefault((candidate.value, candidate.encoding), candidate)
        return list(unique.values())

    def _scan(self, data: bytes, where: str, encoding: str) -> list[Candidate]:
        return [
            Candidate(secret, rule_id, where, encoding)
            for rule_id, secret in self._scanner.candidate_secrets(data)
        ]


def _decoded_runs(data: bytes) -> Iterable[tuple[str, bytes]]:
    pieces: list[bytes] = []
    for match in _BASE64_RUN.finditer(data):
        run = match.group(0)
        for decoder in (base64.b64decode, base64.urlsafe_b64decode):
            try:
                pieces.append(decoder(run + b"=" * (-len(run) % 4)))
                break
            except (binascii.Error, ValueError):
                continue
    if pieces:
        yield "base64", b"\n".join(pieces)
    hex_pieces = [binascii.unhexlify(m.group(0)) for m in _HEX_RUN.finditer(data)]
    if hex_pieces:
        yield "hex", b"\n".join(hex_pieces)


def walk_files(roots: Sequence[Path]) -> list[Path]:
    """Regular files under ``roots`` (files themselves included), symlinks not followed."""
    files: list[Path] = []
    for root in roots:
        if root.is_file():
            files.append(root)
            continue
        for directory, _, names in os.walk(root, followlinks=False):
            files.extend(
                Path(directory) / name for name in sorted(names) if (Path(directory) / name).is_file()
            )
    return files


def read_limited(path: Path) -> bytes:
    with path.open("rb") as handle:
        return handle.read(MAX_FILE_BYTES)


@dataclass(slots=True)
class SearchLog:
    """What one test searched and found, as report evidence."""

    entries: list[Searched] = field(default_factory=list)

    def add(self, target: str, files: int, size: int, hits: Sequence[str], method: str) -> None:
        self.entries.append(Searched(target, files, size, tuple(hits), method))
