"""The two connector interfaces.

A source yields chunks and is told when what it yielded has been handled, so that it can commit
offsets or checkpoints only then (at-least-once). A bad record is counted and reported through
``errors``; it never ends the stream.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from jitsec.kernel.records import Chunk, Incident


@dataclass(slots=True)
class SourceErrors:
    """Problems a source met and stepped over, by kind, with a few examples for the report."""

    counts: dict[str, int] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)
    max_examples: int = 20

    def record(self, kind: str, message: str) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        if len(self.examples) < self.max_examples:
            self.examples.append(f"{kind}: {message}")

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@runtime_checkable
class Source(Protocol):
    """Yields chunks. ``acknowledge(chunk)`` is called, in order, once everything found in that chunk
    has been durably handled; a source may commit its position up to that chunk then. ``close`` stops
    following and releases resources; it is idempotent."""

    errors: SourceErrors

    def chunks(self) -> Iterator[Chunk]: ...

    def acknowledge(self, chunk: Chunk) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class BatchedSource(Source, Protocol):
    """A source that reads in batches (a Kafka poll) hands each over at once, so that the pipeline
    scans the batch's whole chunks in one pass instead of one stream per record. ``chunks`` stays
    the same data, one chunk at a time."""

    def chunk_batches(self) -> Iterator[list[Chunk]]: ...


@runtime_checkable
class Sink(Protocol):
    """Delivers incidents somewhere. ``send`` returns once the incident is durably queued (a spool on
    disk), never waiting on the receiver, so a sink never blocks revocation; delivery happens in
    order, retried while the receiver is down. ``close`` flushes what it can within ``timeout``
    seconds and keeps the rest spooled for the next start."""

    name: str

    def send(self, incident: Incident) -> None: ...

    def close(self, timeout: float = 5.0) -> None: ...
