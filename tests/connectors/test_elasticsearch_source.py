"""ElasticsearchSource against the real node started by scripts/services: backfill over several indices,
resume from a checkpoint, follow mode exactly once, and a server that goes away and comes back."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch, helpers
from jitsec.connectors.checkpoints import CheckpointStore
from jitsec.connectors.sources.elasticsearch import (
    ElasticsearchSource,
    ElasticsearchSourceSettings,
    parse_elasticsearch_address,
)

from jitsec.kernel.records import Chunk, ElasticsearchOrigin
from jitsec.testing import wait_until

pytestmark = pytest.mark.elasticsearch

FAST = ElasticsearchSourceSettings(page_size=7, poll_interval_s=0.1, overlap_s=30.0,
                                   checkpoint_interval_s=0.0, retry_initial_s=0.05, retry_max_s=0.3,
                                   request_timeout_s=5.0)
BASE_MS = 1_750_000_000_000


@pytest.fixture
def es(elasticsearch_url: str) -> Iterator[Elasticsearch]:
    client = Elasticsearch(elasticsearch_url, request_timeout=30)
    yield client
    client.close()


@pytest.fixture
def prefix(es: Elasticsearch) -> Iterator[str]:
    name = f"jitsec-test-{uuid.uuid4().hex[:10]}"
    yield name
    es.indices.delete(index=f"{name}-*", ignore_unavailable=True, allow_no_indices=True)


def _create(es: Elasticsearch, index: str) -> None:
    es.indices.create(index=index, settings={"number_of_shards": 2, "number_of_replicas": 0},
                      mappings={"properties": {"@timestamp": {"type": "date"}}})


def _load(es: Elasticsearch, prefix: str, indices: int, per_index: int) -> set[tuple[str, str]]:
    docs = []
    for i in range(indices):
        _create(es, f"{prefix}-{i}")
        for j in range(per_index):
            docs.append({"_index": f"{prefix}-{i}", "_id": f"d{j}", "@timestamp": BASE_MS + j,
                         "message": f"doc {j} of {i}", "http": {"headers": [f"h{j}", "planted"]}, "n": j})
    helpers.bulk(es, docs, refresh=True)
    return {(d["_index"], d["_id"]) for d in docs}


def _source(url: str, pattern: str, *, follow: bool = False, checkpoints: Path | None = None,
            settings: ElasticsearchSourceSettings = FAST) -> ElasticsearchSource:
    store = CheckpointStore(checkpoints) if checkpoints is not None else None
    return ElasticsearchSource(parse_elasticsearch_address(f"elasticsearch://{url.removeprefix('http://')}/"
                                                          f"{pattern}"), follow=follow, checkpoints=store,
                               settings=settings)


def _docs(chunks: list[Chunk]) -> list[tuple[str, str]]:
    out = []
    for chunk in chunks:
        assert isinstance(chunk.origin, ElasticsearchOrigin)
        key = (chunk.origin.index, chunk.origin.doc_id)
        if not out or out[-1] != key:
            out.append(key)
    return out


def _drain(source: ElasticsearchSource, *, stop_after: int | None = None,
           into: list[Chunk] | None = None) -> list[Chunk]:
    """Every field read, as a chunk of its own (``split_parts``), each chunk acknowledged as it
    comes; ``stop_after`` fields (at the end of the chunk that reaches it)."""
    parts: list[Chunk] = [] if into is None else into
    try:
        for chunk in source.chunks():
            parts.extend(chunk.split_parts())
            source.acknowledge(chunk)
            if stop_after is not None and len(parts) >= stop_after:
                break
    finally:
        source.close()
    return parts


def test_backfill_reads_every_document_of_every_index_once_by_field(
        es: Elasticsearch, prefix: str, elasticsearch_url: str) -> None:
    expected = _load(es, prefix, indices=3, per_index=20)
    chunks = _drain(_source(elasticsearch_url, f"{prefix}-*"))
    docs = _docs(chunks)
    assert len(docs) == len(set(docs)) == 60
    assert set(docs) == expected
    first = [c for c in chunks if c.origin.index == f"{prefix}-0" and c.origin.doc_id == "d3"]  # type: ignore[union-attr]
    assert [(c.origin.field, c.data) for c in first] == [  # type: ignore[union-attr]
        ("message", b"message: doc 3 of 0\n"), ("http.headers[0]", b"headers: h3\n"),
        ("http.headers[1]", b"headers: planted\n")]
    assert [d[0] for d in docs] == sorted(d[0] for d in docs)  # index by index


def test_backfill_resumes_from_its_checkpoint_without_rereading_finished_indices(
        es: Elasticsearch, prefix: str, elasticsearch_url: str, tmp_path: Path) -> None:
    expected = _load(es, prefix, indices=3, per_index=20)
    first = _docs(_drain(_source(elasticsearch_url, f"{prefix}-*", checkpoints=tmp_path), stop_after=3 * 75))
    assert f"{prefix}-0" in {index for index, _ in first}
    second_source = _source(elasticsearch_url, f"{prefix}-*", checkpoints=tmp_path)
    second = _docs(_drain(second_source))
    assert set(first) | set(second) == expected
    assert f"{prefix}-0" not in {index for index, _ in second}  # finished before the stop: skipped
    assert len(second) <= 60 - len(first) + 1  # resumed after the last handled document, not restarted
    third = _docs(_drain(_source(elasticsearch_url, f"{prefix}-*", checkpoints=tmp_path)))
    assert third == []  # a finished backfill stays finished


def test_an_expired_point_in_time_reads_the_index_again_and_skips_nothing(
        es: Elasticsearch, prefix: str, elasticsearch_url: str, tmp_path: Path) -> None:
    expected = _load(es, prefix, indices=1, per_index=30)
    store = CheckpointStore(tmp_path)
    first = _docs(_drain(_source(elasticsearch_url, f"{prefix}-*", checkpoints=tmp_path), stop_after=30))
    key = next(iter(tmp_path.glob("*.json")))
    assert key.exists()
    saved = store.load(f"elasticsearch://{elasticsearch_url.removeprefix('http://')}/{prefix}-*")
    assert saved is not None and saved["pit"]
    es.close_point_in_time(id=saved["pit"])
    source = _source(elasticsearch_url, f"{prefix}-*", checkpoints=tmp_path)
    second = _docs(_drain(source))
    assert set(first) | set(second) == expected
    assert source.errors.counts.get("pit_expired") == 1


def test_follow_picks_up_new_documents_exactly_once(es: Elasticsearch, prefix: str, elasticsearch_url: str,
                                                    tmp_path: Path) -> None:
    _load(es, prefix, indices=2, per_index=10)
    source = _source(elasticsearch_url, f"{prefix}-*", follow=True, checkpoints=tmp_path)
    chunks: list[Chunk] = []
    thread = threading.Thread(target=_drain, args=(source,), kwargs={'into': chunks}, daemon=True)
    thread.start()
    _wait(lambda: len(_docs(chunks)) >= 20)
    newest = BASE_MS + 9
    # same timestamp as an existing document, an older (late) one inside the overlap, and newer ones,
    # each made visible by its own refresh, between polls
    arrivals = (("same-ts", newest), ("late", newest - 5_000), ("new-1", newest + 1), ("new-2", newest + 1))
    for doc_id, ts in arrivals:
        es.index(index=f"{prefix}-1", id=doc_id, document={"@timestamp": ts, "message": doc_id}, refresh=True)
        time.sleep(0.3)
    _wait(lambda: len(_docs(chunks)) >= 24)
    time.sleep(1.0)  # several more polls: nothing may come twice
    source.close()
    thread.join(timeout=10)
    docs = _docs(chunks)
    assert len(docs) == len(set(docs)) == 24
    late_docs = {d for d in docs if not d[1].startswith("d")}
    assert late_docs == {(f"{prefix}-1", doc_id) for doc_id, _ in arrivals}

    # a restarted follower resumes from the checkpoint: old documents are not scanned again
    es.index(index=f"{prefix}-0", id="after-restart", document={"@timestamp": newest + 2, "message": "x"},
             refresh=True)
    again = _source(elasticsearch_url, f"{prefix}-*", follow=True, checkpoints=tmp_path)
    more: list[Chunk] = []
    thread = threading.Thread(target=_drain, args=(again,), kwargs={'into': more}, daemon=True)
    thread.start()
    _wait(lambda: len(_docs(more)) >= 1)
    time.sleep(1.0)
    again.close()
    thread.join(timeout=10)
    assert _docs(more) == [(f"{prefix}-0", "after-restart")]


def test_elasticsearch_going_away_and_back_loses_nothing(
    es: Elasticsearch, prefix: str, elasticsearch_url: str, tcp_proxy: Callable[[str, int], Any]
) -> None:
    expected = _load(es, prefix, indices=2, per_index=40)
    host, _, port = elasticsearch_url.removeprefix("http://").rpartition(":")
    forwarder = tcp_proxy(host, int(port))
    forwarder.start()
    source = _source(f"http://127.0.0.1:{forwarder.port}", f"{prefix}-*")
    chunks: list[Chunk] = []
    resumed, gone = threading.Event(), threading.Event()

    def run() -> None:
        for chunk in source.chunks():
            chunks.extend(chunk.split_parts())
            source.acknowledge(chunk)
            if len(chunks) >= 30 and not gone.is_set():  # gone mid-backfill; back 1.5 s later
                gone.set()
                forwarder.stop()
                threading.Timer(1.5, lambda: (forwarder.start(), resumed.set())).start()
        source.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=120)
    forwarder.stop()
    assert resumed.is_set(), (source.errors, len(chunks))
    assert set(_docs(chunks)) == expected
    assert source.errors.counts.get("connection", 0) >= 1


def _wait(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    assert wait_until(predicate, timeout, interval=0.05), "timed out"
