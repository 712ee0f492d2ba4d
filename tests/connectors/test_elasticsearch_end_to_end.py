"""Planted broker-format credentials in Elasticsearch documents reach the real scanner through
ElasticsearchSource and the pipeline, located by index, document id and field path."""

from __future__ import annotations

import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch, helpers
from jitsec.connectors.sources.elasticsearch import open_elasticsearch_source
from jitsec.scanner.engine import Scanner
from jitsec.scanner.fingerprint import Fingerprinter
from jitsec.scanner.ruleset import load_ruleset

from jitsec.kernel import credential_format as cf
from jitsec.kernel.records import Chunk, ElasticsearchOrigin, Finding
from jitsec.pipeline.runner import run_sources
from jitsec.pipeline.stages import Callback

pytestmark = pytest.mark.elasticsearch
REPO = Path(__file__).resolve().parents[2]


def test_planted_tokens_are_found_by_index_document_and_field(elasticsearch_url: str, tmp_path: Path) -> None:
    prefix = f"jitsec-e2e-{uuid.uuid4().hex[:10]}"
    client = Elasticsearch(elasticsearch_url, request_timeout=30)
    tokens = [cf.mint(cf.CredentialKind.ENGINE_TOKEN) for _ in range(2)]
    try:
        helpers.bulk(client, [
            {"_index": f"{prefix}-a", "_id": "1", "message": "clean", "n": 1},
            {"_index": f"{prefix}-a", "_id": "2",
             "http": {"headers": ["Accept: */*", f"Authorization: Bearer {tokens[0]}"]}},
            {"_index": f"{prefix}-b", "_id": "x", "message": f"connecting with token={tokens[1]} now"},
        ], refresh=True)
        scanner = Scanner(load_ruleset(), Fingerprinter(b"test-key-" * 4), cache_dir=tmp_path / "hs")
        address = f"elasticsearch://{elasticsearch_url.removeprefix('http://')}/{prefix}-*"
        source = open_elasticsearch_source(address, follow=False, checkpoint_dir=tmp_path / "checkpoints")
        found: list[Finding] = []
        lock = threading.Lock()

        def on_findings(chunk: Chunk, findings: list[Finding]) -> None:
            with lock:
                found.extend(findings)

        run_sources([source], scanner, [Callback(on_findings)])
        broker = sorted((f for f in found if f.credential_sha256), key=lambda f: f.origin.index)  # type: ignore[union-attr]
        assert [f.origin for f in broker] == [ElasticsearchOrigin(f"{prefix}-a", "2", "http.headers[1]"),
                                              ElasticsearchOrigin(f"{prefix}-b", "x", "message")]
        assert [f.credential_sha256 for f in broker] == [cf.sha256_fingerprint(t) for t in tokens]
        assert all(t not in f.preview for f in found for t in tokens)
        again = open_elasticsearch_source(address, follow=False, checkpoint_dir=tmp_path / "checkpoints")
        assert list(again.chunks()) == []  # the checkpoint says the backfill is done
        again.close()
    finally:
        client.indices.delete(index=f"{prefix}-*", ignore_unavailable=True, allow_no_indices=True)
        client.close()


def test_benchmark_script_runs_its_short_default(elasticsearch_url: str) -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "es_backfill.py"), "--url", elasticsearch_url,
         "--documents", "2000"], capture_output=True, text=True, timeout=180, cwd=REPO, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "docs/s" in result.stdout and "2/2" in result.stdout
