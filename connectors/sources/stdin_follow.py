"""Follow standard input line by line, for ``kubectl logs -f … | jitsec watch -``.

Reads the raw file descriptor (no Python buffering, which would wait for 8 KiB before handing
anything out) with ``select`` so that each line is scanned as soon as the writer flushes it, and
``close`` from another thread (a signal handler) is seen within ``poll_interval``. A pipe has no
position to resume from, so there are no checkpoints: ``acknowledge`` only counts.
"""

from __future__ import annotations

import os
import select
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import BinaryIO

from jitsec.connectors.sources.linebuffer import LineAssembler

from jitsec.kernel.ports import ChunkReader, SourceErrors
from jitsec.kernel.records import Chunk, StreamOrigin

READ_SIZE = 64 * 1024


class StdinFollowSource(ChunkReader):
    """Chunks of a stream (standard input by default) as lines arrive, until end of stream or close."""

    def __init__(
        self,
        stream: BinaryIO | None = None,
        *,
        name: str = "-",
        poll_interval: float = 0.05,
        partial_timeout: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream
        self.name = name
        self.poll_interval = poll_interval
        self.partial_timeout = partial_timeout
        self.clock = clock
        self.errors = SourceErrors()
        self.acknowledged_until = 0  # end offset of the last chunk acknowledged (and all before it)
        self._stop = threading.Event()

    def chunks(self) -> Iterator[Chunk]:
        stream = self._stream if self._stream is not None else sys.stdin.buffer
        fd = stream.fileno()
        assembler = LineAssembler(partial_timeout=self.partial_timeout)
        origin = StreamOrigin(self.name)
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([fd], [], [], self.poll_interval)
            except (OSError, ValueError) as exc:  # closed under us
                self.errors.record("read-error", f"{self.name}: {exc}")
                break
            if not ready:
                piece = assembler.flush(self.clock())
            else:
                try:
                    data = os.read(fd, READ_SIZE)
                except OSError as exc:
                    self.errors.record("read-error", f"{self.name}: {exc.strerror}")
                    break
                if not data:
                    break  # end of stream
                piece = assembler.feed(data, self.clock())
            if piece is not None:
                yield Chunk(piece.data, origin, piece.offset, piece.line, piece.read_at)
        piece = assembler.flush(self.clock(), force=True)
        if piece is not None:
            yield Chunk(piece.data, origin, piece.offset, piece.line, piece.read_at)

    def acknowledge(self, chunk: Chunk) -> None:
        """A pipe has no position to commit; how far it was handled is kept for callers."""
        self.acknowledged_until = max(self.acknowledged_until, chunk.offset + len(chunk.data))

    def close(self) -> None:
        self._stop.set()
