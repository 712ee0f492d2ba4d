"""What a batched source remembers of a batch it handed out, until the pipeline acknowledges it.

Acknowledgements are cumulative: acknowledging the chunk at index ``i`` of a batch handles every unit
(a Kafka record, an Elasticsearch document) whose last chunk is at or before ``i``. ``marks`` hold, per
unit in the order handed out, the index of its last chunk first, then whatever the source needs to
record the unit as handled (a partition and the offset after the record; a checkpoint update).
"""

from __future__ import annotations

from typing import Generic, TypeVar

from jitsec.kernel.records import Chunk

M = TypeVar("M", bound=tuple)


class HandedOut(Generic[M]):
    __slots__ = ("applied", "chunks", "marks", "position")

    def __init__(self, chunks: list[Chunk], marks: list[M]) -> None:
        self.chunks = chunks
        self.marks = marks
        self.applied = 0  # marks already applied
        self.position = -1  # index of the last chunk acknowledged

    def find(self, chunk: Chunk) -> int | None:
        """Where ``chunk`` is, among the chunks not acknowledged yet (by identity); None if absent."""
        chunks = self.chunks
        if chunks and chunks[-1] is chunk:
            return len(chunks) - 1
        for index in range(self.position + 1, len(chunks)):
            if chunks[index] is chunk:
                return index
        return None
