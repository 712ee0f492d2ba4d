"""Standard input (or any binary stream) as chunks of one stream origin."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from typing import BinaryIO

from connectors.base import SourceErrors
from scanner.model import Chunk, StreamOrigin

CHUNK_SIZE = 1 << 20


class StdinSource:
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
        read = getattr(self._stream, "read1", self._stream.read)
        offset = 0
        while not self._closed:
            try:
                data = read(self._chunk_size)
            except OSError as error:
                self.errors.record("unreadable", f"{self._origin.name}: {error.strerror or error}")
                return
            if not data:
                return
            yield Chunk(data=data, origin=self._origin, offset=offset, read_at=self._clock())
            offset += len(data)

    def acknowledge(self, chunk: Chunk) -> None:
        """A pipe has no position to commit."""

    def close(self) -> None:
        self._closed = True
