"""The chunks of one batch of records (a Kafka poll, an Elasticsearch page), built without a Python
object per record or field.

Consecutive records of one group (a Kafka partition, an Elasticsearch index) are joined into one
``whole`` chunk: each record's value, or each of its JSON string fields read as ``name: value``, is one
newline-terminated ``Part`` of it, located by record (offset, document id) and field path. The scanner
reads every part as its own text and locates a finding by ``part_origin``, so nothing is lost by the
joining: a record costs a few list appends, not a ``Chunk`` and an origin per field, and the pipeline
calls its stages and acknowledges once per chunk. A value or field larger than ``piece_bytes`` ends the
run: it is yielded as a stream of pieces (scanned as one stream, so a secret on a piece boundary is
still found), and the next record starts a new run.

``ends`` holds, for each record added, the index among ``chunks`` of the chunk that holds its end: a
source knows a record handled once that chunk is acknowledged.
"""

from __future__ import annotations

from itertools import accumulate, count, repeat
from operator import add

from jitsec.connectors.sources.json_fields import raw_pieces

from jitsec.kernel.records import Chunk, Origin, Part, part_origin


class RunBuilder:
    """Chunks of one batch; ``group(origin)`` before the records of each partition or index."""

    def __init__(self, piece_bytes: int, read_at: float) -> None:
        self.piece_bytes = piece_bytes
        self.read_at = read_at
        self.chunks: list[Chunk] = []
        self._group: Origin | None = None
        self._first: int | str | None = None  # record of the open run's first part; None: none open
        self._texts: list[bytes] = []
        self._parts: list[Part] = []
        self._cursor = 0
        self.ends: list[int] = []  # per record added: the index of the chunk holding its end

    @property
    def last_index(self) -> int:
        """The chunk that holds the last record added (the open run counts as the next chunk)."""
        return len(self.chunks) if self._first is not None else len(self.chunks) - 1

    def group(self, origin: Origin) -> None:
        """The records that follow belong to ``origin``'s partition or index (any record of it)."""
        self._flush()
        self._group = origin

    def record(self, record: int | str) -> None:
        """A record with nothing to scan: handled with the records before it. Opens a run so that
        it has a chunk to be acknowledged by (an empty one if nothing else joins it)."""
        if self._first is None:
            self._first = record
        self.ends.append(len(self.chunks))

    def value(self, record: int | str, data: bytes) -> None:
        """A record's value itself (not empty), read raw."""
        text = data if data.endswith(b"\n") else data + b"\n"
        if len(text) > self.piece_bytes:
            self._pieces(record, None, text)
            self.ends.append(len(self.chunks) - 1)
            return
        if self._first is None:
            self._first = record
        self._parts.append((self._cursor, record, None))
        self._texts.append(text)
        self._cursor += len(text)
        self.ends.append(len(self.chunks))

    def values(self, records: list[int], values: list[bytes]) -> None:
        """Several records' values (none empty), read raw: one run, joined at C speed."""
        data = b"\n".join(values) + b"\n"
        if b"\n\n" in data or max(map(len, values)) >= self.piece_bytes:
            for record, value in zip(records, values, strict=True):  # some end with a newline, or are large
                self.value(record, value)
            return
        if self._first is None:
            self._first = records[0]
        starts = map(add, accumulate(map(len, values), initial=0), count(self._cursor))  # a newline each
        self._parts.extend(zip(starts, records, repeat(None)))
        self._texts.append(data)
        self._cursor += len(data)
        self.ends.extend(repeat(len(self.chunks), len(records)))

    def fields(self, record: int | str, paths: list[str], texts: list[str]) -> None:
        """A record's string fields as ``field_columns`` gives them: each text newline-terminated
        (empty ones left out), one part each."""
        joined = "\n".join(texts)
        if joined and joined[0] != "\n" and joined[-1] != "\n" and "\n\n" not in joined:
            data = (joined + "\n").encode("utf-8", "surrogatepass")
            if len(data) == len(joined) + 1 and len(data) <= self.piece_bytes:  # ASCII: a char a byte
                if self._first is None:
                    self._first = record
                starts = map(add, accumulate(map(len, texts), initial=0), count(self._cursor))
                self._parts.extend(zip(starts, repeat(record), paths))
                self._texts.append(data)
                self._cursor += len(data)
                self.ends.append(len(self.chunks))
                return
        added = False
        for path, text in zip(paths, texts, strict=True):  # some are empty, end with a newline, or not ASCII
            if not text:
                continue
            encoded = (text if text[-1] == "\n" else text + "\n").encode("utf-8", "surrogatepass")
            added = True
            if len(encoded) > self.piece_bytes:
                self._pieces(record, path, encoded)
                continue
            if self._first is None:
                self._first = record
            self._parts.append((self._cursor, record, path))
            self._texts.append(encoded)
            self._cursor += len(encoded)
        if not added:
            self.record(record)
        else:
            self.ends.append(self.last_index)

    def finish(self) -> list[Chunk]:
        self._flush()
        return self.chunks

    def _pieces(self, record: int | str, field: str | None, text: bytes) -> None:
        """A value or field too large for a run: the run so far, then the pieces."""
        assert self._group is not None
        self._flush()
        where = part_origin(self._group, record, field)
        self.chunks.extend(Chunk(data=piece, origin=where, offset=at, line=line, read_at=self.read_at)
                           for at, line, piece in raw_pieces(text, self.piece_bytes))

    def _flush(self) -> None:
        if self._first is None:
            return
        assert self._group is not None
        origin = part_origin(self._group, self._first, None)
        if self._parts:
            self.chunks.append(Chunk(data=b"".join(self._texts), origin=origin, read_at=self.read_at,
                                     whole=True, parts=tuple(self._parts)))
        else:  # only records with nothing to scan: a chunk for them to be acknowledged by
            self.chunks.append(Chunk(data=b"", origin=origin, read_at=self.read_at))
        self._first = None
        self._texts, self._parts, self._cursor = [], [], 0
