from __future__ import annotations

import threading
from collections.abc import Iterator

from jitsec.scanner.engine import Scanner

from jitsec.kernel.ports import ChunkReader, SourceErrors
from jitsec.kernel.records import Chunk, Finding, KafkaOrigin, StreamOrigin
from jitsec.pipeline.runner import run_sources
from jitsec.pipeline.stages import Callback

AWS = b"AKIA2OGYBAH6STMMNXNN"


class ListSource(ChunkReader):
    """An in-memory source: yields the given chunks, records acknowledgements, may fail midway."""

    def __init__(self, chunks: list[Chunk], fail_after: int | None = None) -> None:
        self.errors = SourceErrors()
        self._chunks = chunks
        self._fail_after = fail_after
        self.acked: list[Chunk] = []
        self.closed = False

    def chunks(self) -> Iterator[Chunk]:
        for index, chunk in enumerate(self._chunks):
            if self._fail_after is not None and index == self._fail_after:
                raise ConnectionError("broker went away")
            yield chunk

    def acknowledge(self, chunk: Chunk) -> None:
        self.acked.append(chunk)

    @property
    def handled(self) -> list[Chunk]:
        """Every chunk up to the last one acknowledged (acknowledgements are cumulative), after
        checking that they came in order."""
        positions = [next(i for i, c in enumerate(self._chunks) if c is chunk) for chunk in self.acked]
        assert positions == sorted(positions)
        return self._chunks[: positions[-1] + 1] if positions else []

    def close(self) -> None:
        self.closed = True


def split(data: bytes, size: int, origin=StreamOrigin("s")) -> list[Chunk]:  # noqa: B008
    return [Chunk(data[i:i + size], origin, offset=i) for i in range(0, len(data), size)]


def test_every_chunk_is_handled_then_acknowledged_in_order(hs_scanner: Scanner) -> None:
    data = b"line one\nkey=" + AWS + b" end\n" + b"filler line\n" * 5
    chunks = split(data, 7)  # the secret straddles several chunks
    source = ListSource(chunks)
    calls: list[tuple[Chunk, list[Finding]]] = []

    def on_findings(chunk: Chunk, findings: list[Finding]) -> None:
        assert chunk not in source.handled  # handled before acknowledged
        calls.append((chunk, findings))

    stats = run_sources([source], hs_scanner, [Callback(on_findings)])
    assert [c for c, _ in calls] == chunks == source.handled
    found = [f for _, fs in calls for f in fs]
    assert len(found) == 1 and found[0].offset == 13
    holder = next(c for c, fs in calls if fs)
    assert holder.offset + len(holder.data) > 13  # reported with a chunk that holds its bytes
    assert stats.chunks == len(chunks) and stats.findings == 1 and stats.bytes == len(data)
    assert source.closed


def test_each_record_origin_is_its_own_stream(hs_scanner: Scanner) -> None:
    records = [Chunk(b"v=" + AWS, KafkaOrigin("logs", 0, n)) for n in range(3)]
    source = ListSource(records)
    seen: list[int] = []
    run_sources([source], hs_scanner, [Callback(lambda chunk, fs: seen.append(len(fs)))])
    assert seen == [1, 1, 1] and source.handled == records


def test_a_failing_source_is_counted_and_others_go_on(hs_scanner: Scanner) -> None:
    good = ListSource(split(b"ok=" + AWS + b"\n", 5, StreamOrigin("good")))
    bad = ListSource(split(b"x\n" * 10, 2, StreamOrigin("bad")), fail_after=3)
    found: list[Finding] = []
    lock = threading.Lock()

    def on_findings(chunk: Chunk, findings: list[Finding]) -> None:
        with lock:
            found.extend(findings)

    stats = run_sources([good, bad], hs_scanner, [Callback(on_findings)])
    assert len(found) == 1
    assert stats.errors.counts == {"source": 1}
    assert "broker went away" in stats.errors.examples[0]
    assert len(bad.handled) == 3 and bad.closed


def test_a_failing_handler_stops_acknowledging(hs_scanner: Scanner) -> None:
    source = ListSource(split(b"a\nb\nc\n", 2))

    def on_findings(chunk: Chunk, findings: list[Finding]) -> None:
        if chunk.offset == 2:
            raise RuntimeError("sink is full")

    stats = run_sources([source], hs_scanner, [Callback(on_findings)])
    assert [c.offset for c in source.handled] == [0]
    assert stats.errors.counts == {"handler": 1}


def test_stop_event_ends_the_run(hs_scanner: Scanner) -> None:
    stop = threading.Event()
    stop.set()
    source = ListSource(split(b"a\n" * 10, 2))
    stats = run_sources([source], hs_scanner, [Callback(lambda c, f: None)], stop=stop)
    assert stats.chunks == 0 and source.closed


class BatchedListSource(ListSource):
    """The same chunks handed over in batches, as a Kafka poll does."""

    def __init__(self, chunks: list[Chunk], batch: int) -> None:
        super().__init__(chunks)
        self._batch = batch

    def batches(self) -> Iterator[list[Chunk]]:
        for start in range(0, len(self._chunks), self._batch):
            yield self._chunks[start:start + self._batch]


def records() -> list[Chunk]:
    """Whole records, a large record streamed in pieces between them, and empty values."""
    lines = [b"k=" + AWS + b"\n" if n % 3 == 0 else b"quiet line\n" for n in range(8)]
    chunks = [Chunk(line, KafkaOrigin("t", 0, n), whole=True) for n, line in enumerate(lines)]
    big = b"padding " * 4 + b"token=" + AWS + b"\n"
    piece_origin = KafkaOrigin("t", 0, 8)
    chunks += [Chunk(big[i:i + 16], piece_origin, offset=i) for i in range(0, len(big), 16)]
    chunks += [Chunk(b"", KafkaOrigin("t", 0, 9))]
    chunks += [Chunk(b"k=" + AWS + b"\n", KafkaOrigin("t", 1, n), whole=True) for n in range(3)]
    return chunks


def test_batches_give_the_findings_and_order_of_one_chunk_at_a_time(hs_scanner: Scanner) -> None:
    def run(source: ListSource) -> list[tuple]:
        calls: list[tuple] = []

        def on_findings(chunk: Chunk, findings: list[Finding]) -> None:
            assert chunk not in source.handled
            calls.append((chunk, [(f.origin, f.offset, f.line, f.column, f.rule_id) for f in findings]))

        run_sources([source], hs_scanner, [Callback(on_findings)])
        assert [chunk for chunk, _ in calls] == source.handled
        return calls

    one_by_one = run(ListSource(records()))
    assert sum(len(found) for _, found in one_by_one) == 7
    for size in (1, 2, 5, 100):
        assert run(BatchedListSource(records(), size)) == one_by_one


def test_a_rotated_file_is_a_new_stream_and_its_secret_is_delivered_at_once(hs_scanner: Scanner) -> None:
    """The old file ended without a newline; the new one (same path, offsets from 0) holds a secret.
    Its findings must come with its own chunk, not wait until it grows past the old file's size."""
    origin = StreamOrigin("app.log")
    old = [Chunk(b"filler line\n" * 50, origin, offset=0),
           Chunk(b"last line without newline", origin, offset=600)]
    new = Chunk(b"key=" + AWS + b"\n", origin, offset=0)
    source = ListSource([*old, new])
    calls: list[tuple[Chunk, list[Finding]]] = []
    run_sources([source], hs_scanner, [Callback(lambda chunk, found: calls.append((chunk, found)))])
    assert source.handled == [*old, new]
    assert [(chunk.offset, len(found)) for chunk, found in calls] == [(0, 0), (600, 0), (0, 1)]
    assert calls[-1][1][0].line == 1


def test_a_truncated_file_restarts_its_stream_and_reports_the_secret_once(hs_scanner: Scanner) -> None:
    origin = StreamOrigin("app.log")
    chunks = [Chunk(b"key=" + AWS + b"\n" + b"x" * 40 + b"\n", origin, offset=0),
              Chunk(b"key=" + AWS + b"\n", origin, offset=0)]  # copytruncate, then the same line again
    found: list[Finding] = []
    run_sources([ListSource(chunks)], hs_scanner, [Callback(lambda chunk, fs: found.extend(fs))])
    assert [(f.offset, f.line) for f in found] == [(4, 1), (4, 1)]  # each occurrence once, where it is


def test_a_batch_is_acknowledged_once_with_its_last_chunk(hs_scanner: Scanner) -> None:
    chunks = [Chunk(b"k=" + AWS + b"\n" if n == 4 else b"quiet line\n", KafkaOrigin("t", 0, n), whole=True)
              for n in range(10)]
    source = BatchedListSource(chunks, 4)
    run_sources([source], hs_scanner, [Callback(lambda chunk, fs: None)])
    assert source.acked == [chunks[3], chunks[7], chunks[9]]


def test_a_stage_that_raises_mid_batch_acknowledges_only_the_chunks_before_it(hs_scanner: Scanner) -> None:
    chunks = [Chunk(b"line\n", KafkaOrigin("t", 0, n), whole=True) for n in range(6)]
    source = BatchedListSource(chunks, 6)

    def on_findings(chunk: Chunk, findings: list[Finding]) -> None:
        if chunk is chunks[4]:
            raise RuntimeError("sink is full")

    stats = run_sources([source], hs_scanner, [Callback(on_findings)])
    assert source.acked == [chunks[3]] and stats.errors.counts == {"handler": 1}
