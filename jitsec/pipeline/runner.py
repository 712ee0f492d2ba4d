"""Run sources through one scanner and a chain of stages: a thread per source, a stream scan per
origin, and each chunk acknowledged, in order, only once every stage has returned for it (one
acknowledgement per batch, for its last chunk handled: sources acknowledge cumulatively).

A batch's standalone chunks (Kafka records, document fields, diff hunks) are scanned in one pass per
batch; the other chunks of an origin are scanned as one stream, so a secret straddling two chunks is
found once. A bad record (a source error, a chunk that fails to scan) is counted and reported, never
fatal. Commands do not call this directly: ``jitsec.pipeline.builder`` builds the scanner and the
stages, and ``Pipeline.run`` calls this.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from jitsec.kernel.ports import Source, SourceErrors, Stage
from jitsec.kernel.records import Chunk, Finding, Origin
from jitsec.scanner.engine import Scanner, StreamScan


@dataclass(slots=True)
class PipelineStats:
    """Totals of one run; ``errors`` merges every source's errors plus the pipeline's own."""

    chunks: int = 0
    bytes: int = 0
    findings: int = 0
    joined_passes: int = 0  # matcher passes over several standalone chunks at once (a poll, a page)
    joined_chunks: int = 0  # chunks scanned in those passes
    first_batch_at: float | None = None  # monotonic: the first batch any source handed over
    last_handled_at: float | None = None  # monotonic: the last time chunks were acknowledged
    errors: SourceErrors = field(default_factory=SourceErrors)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def active_seconds(self) -> float:
        """From the first batch received to the last chunk handled: the run without its start-up and
        its idle end (what throughput is measured over)."""
        if self.first_batch_at is None or self.last_handled_at is None:
            return 0.0
        return max(0.0, self.last_handled_at - self.first_batch_at)

    def add(self, chunks: int, size: int, findings: int) -> None:
        with self._lock:
            self.chunks += chunks
            self.bytes += size
            self.findings += findings
            self.last_handled_at = time.monotonic()

    def batch_received(self) -> None:
        if self.first_batch_at is None:
            with self._lock:
                if self.first_batch_at is None:
                    self.first_batch_at = time.monotonic()

    def add_joined(self, chunks: int) -> None:
        with self._lock:
            self.joined_passes += 1
            self.joined_chunks += chunks

    def merge_errors(self, errors: SourceErrors) -> None:
        with self._lock:
            for kind, count in errors.counts.items():
                self.errors.counts[kind] = self.errors.counts.get(kind, 0) + count
            room = self.errors.max_examples - len(self.errors.examples)
            self.errors.examples.extend(errors.examples[: max(room, 0)])


def run_sources(
    sources: Sequence[Source],
    scanner: Scanner,
    stages: Sequence[Stage],
    *,
    stop: threading.Event | None = None,
) -> PipelineStats:
    """Scan every source until it ends (or ``stop`` is set); returns when all threads are done.

    For each chunk, also one without findings, every stage's ``process`` runs in order from that
    source's thread; chunks of one source go through in order. Once a batch's chunks have been through
    every stage, the source is told with one ``source.acknowledge(last)`` for the last of them (which
    acknowledges it and every chunk before it). A stage that raises is a pipeline error for that chunk:
    only the chunks before it are acknowledged and the source stops (so an at-least-once source
    re-delivers the rest on the next run). Stages are not closed here: they outlive one call
    (``Pipeline.close`` closes them).
    """
    stats = PipelineStats()
    stop = stop or threading.Event()
    threads = [
        threading.Thread(target=_run_one, args=(source, scanner, stages, stop, stats),
                         name=f"scan-{index}", daemon=True)
        for index, source in enumerate(sources)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return stats


Ready = list[tuple[Chunk, list[Finding]]]


def _run_one(source: Source, scanner: Scanner, stages: Sequence[Stage], stop: threading.Event,
             stats: PipelineStats) -> None:
    own_errors = SourceErrors()
    streams = _Streams(scanner)
    try:
        for batch in source.batches():
            if stop.is_set():
                break
            if not batch:
                continue
            stats.batch_received()
            together = _scan_standalone(scanner, batch, own_errors, stats)
            ready: Ready = []
            for chunk, found in zip(batch, together, strict=True):
                if found is None:
                    ready.extend(streams.feed(chunk, own_errors))
                else:
                    if streams.stream is not None:
                        ready.extend(streams.finish(own_errors))
                    ready.append((chunk, found))
            if not _deliver(source, ready, stages, stats, own_errors):
                return
        _deliver(source, streams.finish(own_errors), stages, stats, own_errors)
    except Exception as error:
        own_errors.record("source", f"{type(error).__name__}: {error}")
    finally:
        try:
            source.close()
        finally:
            stats.merge_errors(source.errors)
            stats.merge_errors(own_errors)


def _scan_standalone(
    scanner: Scanner, batch: Sequence[Chunk], errors: SourceErrors, stats: PipelineStats
) -> list[list[Finding] | None]:
    """Findings of the batch's standalone (``whole``) chunks, by position in the batch (None for the
    others): the newline-terminated ones from one pass over them all, the others each on its own. When
    that pass fails, each is scanned alone, and a second failure is a bad record (no findings)."""
    found: list[list[Finding] | None] = [None] * len(batch)
    joined = [position for position, chunk in enumerate(batch) if chunk.whole and chunk.data.endswith(b"\n")]
    if joined:
        try:
            together = scanner.scan_whole(batch if len(joined) == len(batch) else [batch[p] for p in joined])
            for position, findings in zip(joined, together, strict=True):
                found[position] = findings
            stats.add_joined(len(joined))
        except Exception as error:
            errors.record("scan", f"{len(joined)} whole chunks together: {type(error).__name__}")
    for position, chunk in enumerate(batch):
        if chunk.whole and found[position] is None:
            try:
                if chunk.parts or chunk.data.endswith(b"\n"):
                    found[position] = scanner.scan_whole([chunk])[0]
                else:
                    found[position] = scanner.scan_bytes(chunk.data, chunk.origin, offset=chunk.offset,
                                                         line=chunk.line)
            except Exception as error:
                errors.record("scan", f"{chunk.origin}: {type(error).__name__}")
                found[position] = []
    return found


def _deliver(source: Source, ready: Ready, stages: Sequence[Stage], stats: PipelineStats,
             errors: SourceErrors) -> bool:
    """Every stage for each chunk in order, then one acknowledgement for the last chunk that went
    through them all (which acknowledges the ones before it too). False when a stage raised."""
    delivered = 0
    try:
        for chunk, found in ready:
            findings = found
            for stage in stages:
                findings = stage.process(chunk, findings)
            delivered += 1
    except Exception as error:
        errors.record("handler", f"{type(error).__name__}: {error}")
    if delivered:
        handled = ready[:delivered] if delivered < len(ready) else ready
        source.acknowledge(handled[-1][0])
        stats.add(delivered, sum([len(chunk.data) for chunk, _ in handled]),
                  sum([len(found) for _, found in handled]))
    return delivered == len(ready)


class _Streams:
    """The stream scan of the current origin, and the chunks of it not yet fully scanned.

    A chunk is ready once the stream has scanned past its last byte; findings go to the chunk whose
    bytes hold them. A new origin finishes the previous one (sources yield one origin at a time), and
    so does a chunk that does not continue the stream (a rotated or truncated file starts again at
    offset 0 under the same path): offsets of the old file and the new one are never compared. A
    chunk that fails to scan is a bad record: counted, and it and the stream's pending chunks are ready
    with the findings collected so far (so none is left out of the acknowledgements).
    """

    def __init__(self, scanner: Scanner) -> None:
        self.scanner = scanner
        self.origin: Origin | None = None
        self.stream: StreamScan | None = None
        self.next_offset = 0  # where the stream's next chunk starts
        self.pending: deque[Chunk] = deque()
        self.findings: list[Finding] = []

    def feed(self, chunk: Chunk, errors: SourceErrors) -> Ready:
        ready: Ready = []
        if self.stream is None or chunk.origin != self.origin or chunk.offset != self.next_offset:
            ready = self.finish(errors)
            self.origin, self.stream = chunk.origin, self.scanner.stream(chunk.origin)
        assert self.stream is not None
        self.next_offset = chunk.offset + len(chunk.data)
        self.pending.append(chunk)
        try:
            self.findings.extend(self.stream.feed(chunk))
        except Exception as error:
            errors.record("scan", f"{chunk.origin}: {type(error).__name__}")
            return ready + self._abandon()
        return ready + self._release(self.stream.scanned_until)

    def finish(self, errors: SourceErrors) -> Ready:
        if self.stream is None:
            return []
        try:
            self.findings.extend(self.stream.finish())
        except Exception as error:
            errors.record("scan", f"{self.origin}: {type(error).__name__}")
            return self._abandon()
        ready = self._release(None)
        self.stream, self.origin = None, None
        return ready

    def _abandon(self) -> Ready:
        ready = self._release(None)
        self.stream, self.origin = None, None
        return ready

    def _release(self, until: int | None) -> Ready:
        ready = []
        while self.pending:
            chunk = self.pending[0]
            end = chunk.offset + len(chunk.data)
            if until is not None and end > until:
                break
            self.pending.popleft()
            last = until is None and not self.pending
            mine = [f for f in self.findings if last or f.offset < end]
            self.findings = [f for f in self.findings if not (last or f.offset < end)]
            ready.append((chunk, mine))
        return ready
