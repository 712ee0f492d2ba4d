"""Several followed sources read at once, presented as one source.

Each source runs its blocking ``chunks()`` on its own thread and hands chunks over a bounded queue
(so a fast source cannot run ahead of the scanner by more than ``queue_size`` chunks). The consumer
sees one stream; ``acknowledge`` is routed back to the source that produced the chunk, preserving
each source's own order. The stream ends when every source has ended, when ``close`` is called
(a signal handler may call it from any thread), or after ``idle_timeout`` seconds without a chunk.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence

from connectors.base import Source, SourceErrors
from scanner.model import Chunk

_DONE = object()


class FanInSource:
    """One stream over ``sources``; owns them (closing it closes them)."""

    def __init__(
        self,
        sources: Sequence[Source],
        *,
        idle_timeout: float | None = None,
        queue_size: int = 64,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sources = list(sources)
        self.idle_timeout = idle_timeout
        self.clock = clock
        self.idle_expired = False
        self._queue: queue.Queue[tuple[int, object]] = queue.Queue(maxsize=queue_size)
        self._stop = threading.Event()
        self._owner: dict[int, int] = {}  # id(chunk) -> index of its source, until acknowledged
        self._own_errors = SourceErrors()
        self._threads: list[threading.Thread] = []

    @property
    def errors(self) -> SourceErrors:
        """Everything every source counted, merged (a fresh snapshot on each access)."""
        merged = SourceErrors(counts=dict(self._own_errors.counts), examples=list(self._own_errors.examples))
        for source in self.sources:
            for kind, count in source.errors.counts.items():
                merged.counts[kind] = merged.counts.get(kind, 0) + count
            room = max(0, merged.max_examples - len(merged.examples))
            merged.examples.extend(source.errors.examples[:room])
        return merged

    def chunks(self) -> Iterator[Chunk]:
        for index, source in enumerate(self.sources):
            thread = threading.Thread(
                target=self._pump, args=(index, source), daemon=True, name=f"source-{index}"
            )
            thread.start()
            self._threads.append(thread)
        running = len(self.sources)
        last_chunk = self.clock()
        while running:
            try:
                index, item = self._queue.get(timeout=0.05)
            except queue.Empty:
                if self._stop.is_set():
                    break
                if self.idle_timeout is not None and self.clock() - last_chunk >= self.idle_timeout:
                    self.idle_expired = True
                    break
                continue
            if item is _DONE:
                running -= 1
                continue
            assert isinstance(item, Chunk)
            last_chunk = self.clock()
            self._owner[id(item)] = index
            yield item
        self.close()

    def acknowledge(self, chunk: Chunk) -> None:
        index = self._owner.pop(id(chunk), None)
        if index is not None:
            self.sources[index].acknowledge(chunk)

    def close(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        for source in self.sources:
            source.close()
        # Unblock pumps waiting on a full queue; what they held was never acknowledged, so a
        # checkpointed source reads it again on the next start.
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        for thread in self._threads:
            thread.join(timeout=2)

    def _pump(self, index: int, source: Source) -> None:
        try:
            for chunk in source.chunks():
                if not self._put((index, chunk)):
                    return
        except Exception as exc:  # a source that breaks is reported; the others go on
            self._own_errors.record("source-failed", f"{type(exc).__name__}: {exc}")
        finally:
            self._put((index, _DONE))

    def _put(self, item: tuple[int, object]) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False
