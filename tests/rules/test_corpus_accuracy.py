"""The default packs against a seeded benchmark corpus: precision and recall by line, as the benchmark
measures them, on a corpus the rules were not tuned on (another seed). Accuracy only; speed belongs to
``benchmarks/scan_throughput.py``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jitsec.scanner.engine import Scanner
from jitsec.scanner.fingerprint import Fingerprinter
from jitsec.scanner.ruleset import load_ruleset

from benchmarks.corpus import TRUTH, generate
from jitsec.kernel.records import Chunk, FileOrigin


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("corpus")
    generate(out, size_mb=6, seed=11)
    return out


def _flagged_lines(scanner: Scanner, corpus: Path) -> set[tuple[str, int]]:
    """Scan every corpus file in 256 KiB chunks, as a file source would; (file, line) of each finding."""
    lines: set[tuple[str, int]] = set()
    for path in sorted(corpus.glob("*.*")):
        if path.name in (TRUTH, "manifest.json"):
            continue
        origin = FileOrigin(str(path))
        stream = scanner.stream(origin)
        data = path.read_bytes()
        findings = []
        for offset in range(0, len(data), 1 << 18):
            findings += stream.feed(Chunk(data=data[offset:offset + (1 << 18)], origin=origin, offset=offset))
        findings += stream.finish()
        lines.update((path.name, finding.line) for finding in findings)
        # a paired finding names its other half's line too (an AWS key id above its secret)
        lines.update((path.name, related.line) for finding in findings for related in finding.related)
    return lines


def test_corpus_is_reproducible(tmp_path: Path, corpus: Path) -> None:
    again = generate(tmp_path, size_mb=6, seed=11)
    for name in again.files:
        assert (tmp_path / name).read_bytes() == (corpus / name).read_bytes()


def test_default_packs_meet_the_accuracy_targets_by_line(corpus: Path) -> None:
    rows = [json.loads(line) for line in (corpus / TRUTH).read_text(encoding="utf-8").splitlines()]
    truth = {(row["path"], row["line"]) for row in rows if row["positive"]}
    assert len(truth) >= 20
    scanner = Scanner(load_ruleset(), Fingerprinter(b"corpus-test-key-" + b"0" * 16), engine="python")
    flagged = _flagged_lines(scanner, corpus)
    true_positives = len(flagged & truth)
    false_positives = sorted(flagged - truth)
    missed = sorted(truth - flagged)
    assert true_positives / len(truth) >= 0.99, f"missed: {missed}"
    precision = true_positives / (true_positives + len(false_positives))
    assert precision >= 0.97, f"false positives: {false_positives}"
