"""Cut a byte stream into pieces that end at line boundaries, without holding data back for long.

Following sources read whatever the writer has flushed, often half a line. Holding the unfinished
line until its newline arrives keeps secrets whole within one chunk; releasing it after
``partial_timeout`` seconds (or once it grows past ``max_partial`` bytes) keeps latency bounded for
writers that never end their lines. Offsets and line numbers of each piece are tracked here so every
chunk can say exactly where its first byte sits in the stream.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Piece:
    """Bytes ready to become a chunk: ``offset``/``line`` place ``data[0]``; ``read_at`` is when the
    earliest of these bytes was read (monotonic clock)."""

    data: bytes
    offset: int
    line: int
    read_at: float


class LineAssembler:
    """Accumulates reads; hands out complete lines, and unfinished ones once they are overdue."""

    def __init__(
        self,
        *,
        offset: int = 0,
        line: int = 1,
        partial_timeout: float = 0.25,
        max_partial: int = 1 << 20,
    ) -> None:
        if partial_timeout < 0 or max_partial < 1:
            raise ValueError("partial_timeout must be >= 0 and max_partial >= 1")
        self.offset = offset  # stream offset of the first byte not yet handed out
        self.line = line  # line number of that byte
        self.partial_timeout = partial_timeout
        self.max_partial = max_partial
        self._pending = bytearray()
        self._pending_since: float | None = None

    @property
    def pending(self) -> int:
        """How many bytes are held back (an unfinished line)."""
        return len(self._pending)

    def feed(self, data: bytes, now: float) -> Piece | None:
        """Add freshly read bytes; return the complete lines now available, if any."""
        if not data:
            return None
        if self._pending_since is None:
            self._pending_since = now
        self._pending += data
        cut = self._pending.rfind(b"\n") + 1
        if len(self._pending) - cut >= self.max_partial:
            cut = len(self._pending)
        if cut == 0:
            return None
        piece = self._take(cut)
        if self._pending:
            self._pending_since = now
        return piece

    def flush(self, now: float, *, force: bool = False) -> Piece | None:
        """Release the held unfinished line if it is overdue (or ``force``, at end of stream)."""
        if not self._pending or self._pending_since is None:
            return None
        if not force and now - self._pending_since < self.partial_timeout:
            return None
        return self._take(len(self._pending))

    def _take(self, size: int) -> Piece:
        data = bytes(self._pending[:size])
        del self._pending[:size]
        assert self._pending_since is not None
        piece = Piece(data=data, offset=self.offset, line=self.line, read_at=self._pending_since)
        self.offset += size
        self.line += data.count(b"\n")
        if not self._pending:
            self._pending_since = None
        return piece
