"""The ports between layers: sources and sinks (connectors), and the pipeline's stages.

A source yields chunks and is told when what it yielded has been handled, so that it can commit
offsets or checkpoints only then (at-least-once). A bad record is counted and reported through
``errors``; it never ends the stream.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from jitsec.kernel.leaks import LeakReport, LeakScope, LeakVerdict
from jitsec.kernel.records import Chunk, Finding, Incident

if TYPE_CHECKING:  # a hook run never reports sightings: not imported for it
    from jitsec.kernel.sightings import Sighting


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


class Source(Protocol):
    """Yields chunks in batches and is told, in order, how far they were handled.

    ``batches()`` yields lists of chunks: one poll of a Kafka consumer, one page of an Elasticsearch
    search, or a single chunk for sources that read one at a time (files, tails, stdin). The pipeline
    scans a batch's standalone chunks in one pass. ``acknowledge(chunk)`` is cumulative: ``chunk`` and
    every chunk the source yielded before it have been durably handled, so a source may commit its
    position up to that chunk then. The pipeline calls it once per batch, with the last chunk it
    handled; a caller may also call it for every chunk in order (the same thing, one at a time). A
    chunk acknowledged again, or one the source no longer tracks (a partition revoked since), changes
    nothing. ``lag()`` is how far behind the source's end the reader is (records or bytes), None when
    the source cannot tell. ``close`` stops following and releases resources; it is idempotent and safe
    from another thread.
    """

    @property
    def errors(self) -> SourceErrors: ...  # read only: an attribute or a property (a wrapper's)

    def batches(self) -> Iterator[Sequence[Chunk]]: ...

    def acknowledge(self, chunk: Chunk) -> None:
        """``chunk`` and every chunk yielded before it are handled."""

    def lag(self) -> float | None: ...

    def close(self) -> None: ...


class ChunkReader:
    """Base of sources that read one chunk at a time: each chunk is a batch of one."""

    def chunks(self) -> Iterator[Chunk]:
        raise NotImplementedError

    def batches(self) -> Iterator[Sequence[Chunk]]:
        for chunk in self.chunks():
            yield (chunk,)

    def lag(self) -> float | None:
        return None


class BatchReader:
    """Base of sources that read in batches; ``chunks()`` flattens them (for callers that want one
    chunk at a time, such as tests)."""

    def batches(self) -> Iterator[Sequence[Chunk]]:
        raise NotImplementedError

    def chunks(self) -> Iterator[Chunk]:
        for batch in self.batches():
            yield from batch

    def lag(self) -> float | None:
        return None


class Stage(Protocol):
    """One step after detection: baseline, first-seen in history, leak response, metrics, writing.

    ``process(chunk, findings)`` is called once per chunk, findings empty or not, in chunk order for
    each source and from that source's thread (stages are shared by sources: they guard their own
    state); it returns the findings to hand to the next stage. When it returns, what it did is
    durable: the chunk is acknowledged to its source only after every stage has returned for it (and
    for every chunk before it: acknowledgements are cumulative, one per batch). A stage
    that raises stops that source without acknowledging the chunk. ``close`` is called once, after
    every source has ended; it flushes and releases.
    """

    def process(self, chunk: Chunk, findings: list[Finding]) -> list[Finding]: ...

    def close(self) -> None: ...


@runtime_checkable
class Sink(Protocol):
    """Delivers incidents somewhere. ``send`` returns once the incident is durably queued (a spool on
    disk), never waiting on the receiver, so a sink never blocks revocation; delivery happens in
    order, retried while the receiver is down. ``close`` flushes what it can within ``timeout``
    seconds and keeps the rest spooled for the next start."""

    name: str

    def send(self, incident: Incident) -> None: ...

    def close(self, timeout: float = 5.0) -> None: ...


class LeakReporter(Protocol):
    """Where the leak response reports broker-format and live candidates: the broker, over HTTP
    (``jitsec.broker.client.BrokerClient``). Fingerprints and locations only, never a secret; one
    verdict per distinct fingerprint; raises on transport errors (the response then keeps the batch
    in its outbox and retries), so a report is never lost."""

    def report_leaks(self, reports: Sequence[LeakReport], *,
                     on_leak: LeakScope | None = None) -> list[LeakVerdict]: ...


class SightingReporter(Protocol):
    """Where the response sends the fleet's sightings: the broker (``POST /v1/incidents``, through
    ``jitsec.broker.client.BrokerClient``). Idempotent per sighting id, so a batch may be sent again
    after any failure; raises on transport errors and refusals."""

    def report_sightings(self, sightings: Sequence[Sighting]) -> list[dict[str, Any]]: ...
