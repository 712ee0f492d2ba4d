"""Documents of an Elasticsearch index pattern as a source: a resumable backfill, then (when
following) new documents by timestamp, each document scanned once per string field.

Address: ``elasticsearch://HOST:PORT/INDEX_PATTERN[?timestamp=FIELD]`` (``timestamp`` defaults to
``@timestamp``). A page's documents of one index are one chunk whose parts are their string fields,
each read as ``name: value`` and newline-terminated (see ``runs``), so findings are located by
``ElasticsearchOrigin(index, doc_id, field path)`` and reported at once.

Backfill. The pattern is expanded to concrete indices (data streams to their backing indices), read
in name order, each through its own point in time (PIT) sorted by ``_shard_doc`` and paged with
``search_after``, so a consistent snapshot is read without deep-paging costs. With a checkpoint
directory the position is saved as documents are acknowledged: finished indices are skipped on
restart, and the current one resumes after the last handled document while its PIT is alive (else it
is read again from its start: at least once, never a gap).

Follow. Before the backfill starts, the newest timestamp ``W`` is read; backfilled documents whose
timestamp is within ``overlap_s`` of ``W`` are remembered. Then every ``poll_interval_s`` the
documents with ``timestamp >= watermark - overlap_s`` are read (PIT, sorted by timestamp then
``_shard_doc``), skipping those already seen. The overlap absorbs refresh delays and documents that
share a timestamp or arrive a little late; the seen set (only documents inside the overlap window,
saved in the checkpoint) stops them from being scanned twice. Documents older than the overlap when
they become visible, or without the timestamp field, are not followed (a backfill finds them).

Threading: ``chunks()`` on one thread; ``acknowledge`` and ``close`` from any thread. ``close`` is
idempotent and saves the acknowledged position durably.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from elasticsearch import ApiError, BadRequestError, Elasticsearch, NotFoundError, TransportError
from jitsec.connectors.checkpoints import CheckpointError, CheckpointStore
from jitsec.connectors.errors import SourceAddressError
from jitsec.connectors.sources.handed_out import HandedOut
from jitsec.connectors.sources.json_fields import field_columns
from jitsec.connectors.sources.runs import RunBuilder

from jitsec.kernel.ports import BatchReader, SourceErrors
from jitsec.kernel.records import Chunk, ElasticsearchOrigin

SCHEME = "elasticsearch://"
DEFAULT_TIMESTAMP = "@timestamp"


class ElasticsearchAddressError(SourceAddressError):
    """An ``elasticsearch://`` address that cannot be used; the message says what was expected."""


@dataclass(frozen=True, slots=True)
class ElasticsearchAddress:
    url: str  # http://HOST:PORT
    index_pattern: str
    timestamp_field: str = DEFAULT_TIMESTAMP


def parse_elasticsearch_address(address: str) -> ElasticsearchAddress:
    """``elasticsearch://HOST:PORT/INDEX_PATTERN[?timestamp=FIELD]`` → ``ElasticsearchAddress``."""
    expected = "expected elasticsearch://HOST:PORT/INDEX_PATTERN"
    if not address.startswith(SCHEME):
        raise ElasticsearchAddressError(f"{address!r}: not an elasticsearch:// address; {expected}")
    parts = urlsplit(address)
    try:
        port = parts.port
    except ValueError as error:
        raise ElasticsearchAddressError(f"{address!r}: bad port ({error}); {expected}") from None
    if not parts.hostname or port is None:
        raise ElasticsearchAddressError(f"{address!r}: needs HOST:PORT; {expected}")
    pattern = parts.path.lstrip("/")
    if not pattern or "/" in pattern or any(c in pattern for c in ' "\\<>|?#'):
        raise ElasticsearchAddressError(f"{address!r}: {pattern!r} is not an index pattern; {expected}")
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = set(query) - {"timestamp"}
    if unknown:
        raise ElasticsearchAddressError(f"{address!r}: unknown parameter(s) {sorted(unknown)}")
    timestamps = query.get("timestamp", [DEFAULT_TIMESTAMP])
    if len(timestamps) != 1 or not timestamps[0]:
        raise ElasticsearchAddressError(f"{address!r}: timestamp must name one field")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return ElasticsearchAddress(f"http://{host}:{port}", pattern, timestamps[0])


@dataclass(frozen=True, slots=True)
class ElasticsearchSourceSettings:
    page_size: int = 500
    pit_keep_alive: str = "10m"
    poll_interval_s: float = 1.0
    overlap_s: float = 60.0
    checkpoint_interval_s: float = 1.0
    piece_bytes: int = 1 << 20
    retry_initial_s: float = 0.2
    retry_max_s: float = 5.0
    request_timeout_s: float = 30.0


# One page handed out (or an end-of-index marker, a page without chunks): per document, the index of its
# last chunk (-1 and below: none after those of the documents before it) and its checkpoint update.
_Page = HandedOut[tuple[int, Callable[[], None]]]


@dataclass(slots=True)
class _State:
    """What the checkpoint holds: backfill progress and the follow watermark with its seen set."""

    indices_done: list[str] = field(default_factory=list)
    index: str | None = None
    pit: str | None = None
    after: list[Any] | None = None
    backfill_done: bool = False
    watermark: int | None = None  # epoch millis
    seen: dict[str, int] = field(default_factory=dict)  # "index/id" -> timestamp millis

    def to_dict(self) -> dict[str, Any]:
        return {"indices_done": self.indices_done, "index": self.index, "pit": self.pit, "after": self.after,
                "backfill_done": self.backfill_done, "watermark": self.watermark, "seen": self.seen}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> _State:
        try:
            return cls(list(raw["indices_done"]), raw["index"], raw["pit"], raw["after"],
                       bool(raw["backfill_done"]), raw["watermark"], dict(raw["seen"]))
        except (KeyError, TypeError, ValueError) as error:
            raise CheckpointError(f"malformed elasticsearch checkpoint: {error!r}") from error


class ElasticsearchSource(BatchReader):
    """Implements ``jitsec.kernel.ports.Source`` over the official client (see the module docstring)."""

    def __init__(self, address: ElasticsearchAddress, *, follow: bool,
                 checkpoints: CheckpointStore | None = None,
                 settings: ElasticsearchSourceSettings | None = None,
                 client: Elasticsearch | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.address = address
        self.follow = follow
        self.settings = settings or ElasticsearchSourceSettings()
        self.errors = SourceErrors()
        self.documents_read = 0
        self._checkpoints = checkpoints
        self._key = f"{SCHEME}{address.url.removeprefix('http://')}/{address.index_pattern}"
        self._client = client or Elasticsearch(address.url, request_timeout=self.settings.request_timeout_s)
        self._owns_client = client is None
        self._clock = clock
        self._closed = threading.Event()
        self._lock = threading.Lock()  # guards the acknowledged state and the pending pages
        self._pending: deque[_Page] = deque()
        self._state = self._load()
        self._dirty = False
        self._last_save = clock()
        self._yielded_seen: dict[str, int] = dict(self._state.seen)  # seen by this process, acked or not

    # -- Source protocol ----------------------------------------------------------------------------

    def batches(self) -> Iterator[list[Chunk]]:
        """The chunks of one search page at a time."""
        if not self._state.backfill_done:
            yield from self._backfill()
        if not self.follow:
            return
        while not self._closed.is_set():
            yield from self._follow_once()
            self._maybe_save()
            self._closed.wait(self.settings.poll_interval_s)

    def acknowledge(self, chunk: Chunk) -> None:
        """``chunk`` and every chunk handed out before it are handled; a chunk not pending (acknowledged
        already, or not ours) changes nothing."""
        origin = chunk.origin
        if not isinstance(origin, ElasticsearchOrigin):
            raise TypeError(f"not a chunk of this source: {type(origin).__name__}")
        with self._lock:
            found = next(((depth, page, position) for depth, page in enumerate(self._pending)
                          if (position := page.find(chunk)) is not None), None)
            if found is None:
                return
            depth, page, position = found
            for earlier in list(self._pending)[:depth]:  # wholly handled
                earlier.position = len(earlier.chunks) - 1
            page.position = position
            self._advance_locked()
        self._maybe_save()

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        self._save(durable=True)
        if self._owns_client:
            self._client.close()

    # -- backfill -----------------------------------------------------------------------------------

    def _backfill(self) -> Iterator[list[Chunk]]:
        start_watermark = self._call(self._newest_timestamp) if self.follow else None
        if self._closed.is_set():
            return
        indices = self._call(self._indices)
        if indices is None:
            return
        for index in indices:
            if index in self._state.indices_done:
                continue
            yield from self._backfill_index(index, start_watermark)
            if self._closed.is_set():
                return
        self._push_marker(lambda: self._finish_backfill(start_watermark))

    def _backfill_index(self, index: str, start_watermark: int | None) -> Iterator[list[Chunk]]:
        resume = self._state.index == index
        pit = self._state.pit if resume else None
        after = self._state.after if resume else None
        while not self._closed.is_set():
            if pit is None:
                pit = self._call(lambda: self._open_pit(index))
                if pit is None:
                    return
                after = None
            try:
                page = self._client.search(
                    pit={"id": pit, "keep_alive": self.settings.pit_keep_alive}, sort=["_shard_doc"],
                    size=self.settings.page_size, search_after=after, track_total_hits=False,
                    docvalue_fields=[{"field": self.address.timestamp_field, "format": "epoch_millis"}],
                )
            except NotFoundError:  # the PIT expired (or the index went away): read the index again
                self.errors.record("pit_expired", f"{index}: read again from its start")
                pit = None
                if not self._call(lambda: self._index_exists(index)):
                    self.errors.record("index_missing", index)
                    break
                continue
            except (TransportError, ApiError) as error:
                self._retry_pause("search", error)
                continue
            pit = page.get("pit_id", pit)
            hits = page["hits"]["hits"]
            if not hits:
                break
            built = _PageBuilder(self)
            for hit in hits:
                if self._closed.is_set():
                    return  # not yielded, so never acknowledged nor checkpointed: the next run reads it
                key = f"{hit['_index']}/{hit['_id']}"
                ts = _timestamp_of(hit, self.address.timestamp_field)
                near_end = start_watermark is not None and ts is not None \
                    and ts >= start_watermark - self._overlap_ms()
                if near_end:  # the follow phase will meet it again: remember it was scanned
                    self._yielded_seen[key] = ts  # type: ignore[assignment]
                built.add(hit, self._backfill_effect(index, pit, hit["sort"], key, ts if near_end else None))
            yield built.push()
            after = hits[-1]["sort"]
        self._close_pit(pit)
        self._push_marker(lambda: self._finish_index(index))

    def _backfill_effect(self, index: str, pit: str, sort: list[Any], key: str,
                         ts: int | None) -> Callable[[], None]:
        def apply() -> None:
            self._state.index, self._state.pit, self._state.after = index, pit, sort
            if ts is not None:
                self._state.seen[key] = ts
        return apply

    def _finish_index(self, index: str) -> None:
        self._state.indices_done.append(index)
        self._state.index, self._state.pit, self._state.after = None, None, None

    def _finish_backfill(self, start_watermark: int | None) -> None:
        self._state.backfill_done = True
        if start_watermark is not None:
            self._state.watermark = start_watermark

    # -- follow -------------------------------------------------------------------------------------

    def _follow_once(self) -> Iterator[list[Chunk]]:
        """One poll: documents at or after ``watermark - overlap`` not seen yet, oldest first."""
        watermark = self._state.watermark
        if watermark is None:
            watermark = self._call(self._newest_timestamp)
            if watermark is None:  # empty (or unreachable): everything that comes is new
                watermark = 0
            with self._lock:
                self._state.watermark = watermark
                self._dirty = True
        newest = max([watermark, *self._yielded_seen.values()])
        since = newest - self._overlap_ms()
        pit = self._call(lambda: self._open_pit(self.address.index_pattern))
        if pit is None:
            return
        after: list[Any] | None = None
        ts_field = self.address.timestamp_field
        try:
            while not self._closed.is_set():
                try:
                    page = self._client.search(
                        pit={"id": pit, "keep_alive": self.settings.pit_keep_alive},
                        query={"range": {ts_field: {"gte": since, "format": "epoch_millis"}}},
                        sort=[{ts_field: {"order": "asc", "format": "epoch_millis"}},
                              "_shard_doc"],
                        size=self.settings.page_size, search_after=after, track_total_hits=False,
                    )
                except (TransportError, ApiError) as error:
                    self._retry_pause("follow", error)
                    return
                pit = page.get("pit_id", pit)
                hits = page["hits"]["hits"]
                if not hits:
                    return
                built = _PageBuilder(self)
                for hit in hits:
                    if self._closed.is_set():
                        return
                    key = f"{hit['_index']}/{hit['_id']}"
                    ts = int(hit["sort"][0])
                    if key in self._yielded_seen:
                        continue
                    self._yielded_seen[key] = ts
                    built.add(hit, self._follow_effect(key, ts))
                yield built.push()
                after = hits[-1]["sort"]
        finally:
            self._close_pit(pit)
            self._prune_seen()

    def _follow_effect(self, key: str, ts: int) -> Callable[[], None]:
        def apply() -> None:
            self._state.seen[key] = ts
            if self._state.watermark is None or ts > self._state.watermark:
                self._state.watermark = ts
        return apply

    def _prune_seen(self) -> None:
        horizon = max([self._state.watermark or 0, *self._yielded_seen.values()]) - self._overlap_ms()
        self._yielded_seen = {k: ts for k, ts in self._yielded_seen.items() if ts >= horizon}
        with self._lock:
            acked_horizon = (self._state.watermark or 0) - self._overlap_ms()
            self._state.seen = {k: ts for k, ts in self._state.seen.items() if ts >= acked_horizon}

    # -- documents → chunks, acknowledgement ---------------------------------------------------------

    def _push(self, chunks: list[Chunk], marks: list[tuple[int, Callable[[], None]]]) -> None:
        """A page handed out: pending until its documents are acknowledged (those without chunks are
        handled as soon as everything before them is)."""
        with self._lock:
            self._pending.append(_Page(chunks, marks))
            self._advance_locked()

    def _push_marker(self, apply: Callable[[], None]) -> None:
        self._push([], [(-1, apply)])

    def _advance_locked(self) -> None:
        """Applies the effects of the documents handled so far, oldest first."""
        pending = self._pending
        while pending:
            page = pending[0]
            marks, index, end = page.marks, page.applied, len(page.marks)
            while index < end and marks[index][0] <= page.position:
                marks[index][1]()
                index += 1
            if index > page.applied:
                page.applied = index
                self._dirty = True
            if index < end or page.position < len(page.chunks) - 1:
                return
            pending.popleft()

    # -- checkpoint -----------------------------------------------------------------------------------

    def _load(self) -> _State:
        if self._checkpoints is None:
            return _State()
        raw = self._checkpoints.load(self._key)
        return _State() if raw is None else _State.from_dict(raw)

    def _maybe_save(self) -> None:
        if self._dirty and self._clock() - self._last_save >= self.settings.checkpoint_interval_s:
            self._save(durable=False)

    def _save(self, *, durable: bool) -> None:
        if self._checkpoints is None:
            return
        with self._lock:
            snapshot = self._state.to_dict()
            self._dirty = False
            self._last_save = self._clock()
        try:
            self._checkpoints.save(self._key, snapshot, durable=durable)
        except CheckpointError as error:
            self.errors.record("checkpoint", str(error))

    # -- Elasticsearch calls --------------------------------------------------------------------------

    def _call(self, request: Callable[[], Any]) -> Any:
        """``request()``, retried with backoff while Elasticsearch is unreachable; None once closed."""
        attempt = 0
        while not self._closed.is_set():
            try:
                return request()
            except TransportError as error:
                attempt += 1
                self._retry_pause("request", error, attempt)
            except ApiError as error:
                if error.meta.status < 500 and error.meta.status != 429:
                    raise  # a request the server will never accept: say so, do not spin
                attempt += 1
                self._retry_pause("server", error, attempt)
        return None

    def _retry_pause(self, what: str, error: Exception, attempt: int = 1) -> None:
        self.errors.record("connection" if isinstance(error, TransportError) else what, type(error).__name__)
        delay = min(self.settings.retry_max_s, self.settings.retry_initial_s * 2 ** min(attempt, 16))
        self._closed.wait(delay)

    def _indices(self) -> list[str]:
        """Concrete open indices of the pattern (data streams resolve to their backing indices)."""
        found = self._client.indices.get(index=self.address.index_pattern, expand_wildcards="open",
                                         ignore_unavailable=True, allow_no_indices=True,
                                         filter_path="*.settings.index.uuid")
        names = set(found.body or {})
        if not self.address.index_pattern.startswith("."):
            names = {name for name in names if not name.startswith(".") or name.startswith(".ds-")}
        return sorted(names)

    def _index_exists(self, index: str) -> bool:
        return bool(self._client.indices.exists(index=index))

    def _open_pit(self, target: str) -> str:
        response = self._client.open_point_in_time(index=target, keep_alive=self.settings.pit_keep_alive,
                                                   ignore_unavailable=True)
        return str(response["id"])

    def _close_pit(self, pit: str | None) -> None:
        if pit is None:
            return
        with contextlib.suppress(TransportError, ApiError):  # else it expires on its own
            self._client.close_point_in_time(id=pit)

    def _newest_timestamp(self) -> int | None:
        try:
            response = self._client.search(
                index=self.address.index_pattern, size=0, ignore_unavailable=True, allow_no_indices=True,
                aggs={"newest": {"max": {"field": self.address.timestamp_field}}},
            )
        except BadRequestError as error:  # the field is not a date: nothing can be followed by it
            self.errors.record("timestamp", f"{self.address.timestamp_field}: {error.message}")
            return None
        value = response.get("aggregations", {}).get("newest", {}).get("value")
        return None if value is None else int(value)

    def _overlap_ms(self) -> int:
        return int(self.settings.overlap_s * 1000)


class _PageBuilder:
    """The chunks of one search page (documents of one index joined, see ``runs``) and, per document,
    the chunk that holds its end and what handling it changes in the checkpoint."""

    def __init__(self, source: ElasticsearchSource) -> None:
        self.source = source
        self.runs = RunBuilder(source.settings.piece_bytes, source._clock())
        self.marks: list[tuple[int, Callable[[], None]]] = []
        self.index: str | None = None

    def add(self, hit: dict[str, Any], effect: Callable[[], None]) -> None:
        index, doc_id = hit["_index"], hit["_id"]
        if index != self.index:
            self.runs.group(ElasticsearchOrigin(index, doc_id))
            self.index = index
        self.source.documents_read += 1
        self.runs.fields(doc_id, *field_columns(hit.get("_source") or {}))
        self.marks.append((self.runs.last_index, effect))

    def push(self) -> list[Chunk]:
        """The page's chunks, pending until acknowledged."""
        chunks = self.runs.finish()
        self.source._push(chunks, self.marks)
        return chunks


def _timestamp_of(hit: dict[str, Any], field_name: str) -> int | None:
    values = (hit.get("fields") or {}).get(field_name)
    if values:
        try:
            return int(float(values[0]))
        except (TypeError, ValueError):
            return None
    return None


def open_elasticsearch_source(address: str, *, follow: bool,
                              checkpoint_dir: Path | None) -> ElasticsearchSource:
    """The source an ``elasticsearch://`` address names; talks to the server only in ``chunks()``."""
    checkpoints = CheckpointStore(checkpoint_dir) if checkpoint_dir is not None else None
    return ElasticsearchSource(parse_elasticsearch_address(address), follow=follow, checkpoints=checkpoints)
