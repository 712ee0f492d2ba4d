"""Standard input (or any binary stream) as chunks of one stream origin."""

from __future__ import annotations

import select
import sys
import time
from collections.abc import Callable, Iterator
from typing import BinaryIO

from jitsec.kernel.ports import ChunkReader, SourceErrors
from jitsec.kernel.records import Chunk, StreamOrigin

CHUNK_SIZE = 1 << 20


class StdinSource(ChunkReader):
    """Reads what is available (``read1``) so a live pipe is scanned as lines arrive, up to
    ``chunk_size`` bytes at a time."""

    def __init__(
        self,
        stream: BinaryIO | None = None,
        *,
        name: str = "-",
        chunk_size: int = CHUNK_SIZE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.errors = SourceErrors()
        self._stream = stream if stream is not None else sys.stdin.buffer
        self._origin = StreamOrigin(name)
        self._chunk_size = chunk_size
        self._clock = clock
        self._closed = False

    def chunks(self) -> Iterator[Chunk]:
        offset, line = 0, 1
        while not self._closed:
            try:
                data = self._read_available()
            except OSError as error:
                self.errors.record("unreadable", f"{self._origin.name}: {error.strerror or error}")
                return
            if not data:
                return
            yield Chunk(data=data, origin=self._origin, offset=offset, line=line, read_at=self._clock())
            offset += len(data)
            line += data.count(b"\n")

    def _read_available(self) -> bytes:
        """Block for some bytes, then take whatever else is already waiting, up to ``chunk_size``:
        a live pipe is scanned line by line, a fast one in large chunks."""
        read = getattr(self._stream, "read1", self._stream.read)
        parts = [read(self._chunk_size)]
        size = len(parts[0])
        try:
            descriptor = self._stream.fileno()
        except (OSError, ValueError, AttributeError):
            return parts[0]
        while parts[-1] and size < self._chunk_size and select.select([descriptor], [], [], 0)[0]:
            parts.append(read(self._chunk_size - size))
            size += len(parts[-1])
        return b"".join(parts)

    def acknowledge(self, chunk: Chunk) -> None:
        """A pipe has no position to commit."""

    def close(self) -> None:
        self._closed = True
