"""UTF-16 and UTF-32 text followed as it grows (a Windows service log, a PowerShell transcript): the
followed file's pieces, cut anywhere, become UTF-8 text the scanner reads.

The follower keeps file offsets for its checkpoints; the text handed on has its own offsets, which
count the UTF-8 text (as ``jitsec scan`` does for such files) and run on without gaps from one piece
to the next, so a secret split between two reads is still found once.
"""

from __future__ import annotations

import codecs

from jitsec.connectors.sources.files import BINARY_SNIFF, wide_text_encoding

_EXPLICIT = (  # byte-order marks, longest first; the codec that needs none
    (codecs.BOM_UTF32_LE, "utf-32-le", 4), (codecs.BOM_UTF32_BE, "utf-32-be", 4),
    (codecs.BOM_UTF16_LE, "utf-16-le", 2), (codecs.BOM_UTF16_BE, "utf-16-be", 2),
)


class WideText:
    """Decodes one file's consecutive pieces (``convert``) from where following started."""

    def __init__(self, codec: str, unit: int, bom: bytes) -> None:
        self._decoder = codecs.getincrementaldecoder(codec)(errors="replace")
        self._unit, self._bom = unit, bom
        self._offset: int | None = None  # offset of the next text byte
        self._line = 1

    @classmethod
    def of(cls, head: bytes) -> WideText | None:
        """For a file whose first bytes are ``head``: a decoder, or None when it is not wide text."""
        head = head[:BINARY_SNIFF]
        if b"\0" not in head:
            return None
        for bom, codec, unit in _EXPLICIT:
            if head.startswith(bom):
                return cls(codec, unit, bom)
        detected = wide_text_encoding(head)
        return cls(detected, 2, b"") if detected is not None else None

    def convert(self, data: bytes, offset: int, line: int) -> tuple[bytes, int, int]:
        """The UTF-8 text of the file bytes ``data`` found at file ``offset`` (``line`` there): the
        text, its offset and its line. The first piece may start inside a code unit (following resumed
        after a newline's first byte) or with the byte-order mark: those bytes are not text."""
        if self._offset is None:
            skip = -offset % self._unit
            if offset == 0 and data.startswith(self._bom):
                skip = len(self._bom)
            data = data[skip:]
            self._offset, self._line = offset, line
        text = self._decoder.decode(data).encode("utf-8")
        placed = (text, self._offset, self._line)
        self._offset += len(text)
        self._line += text.count(b"\n")
        return placed
