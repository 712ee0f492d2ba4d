"""One `jitsec scan` run, independent of click: build sources for paths, scan them in parallel,
filter by baseline, stream findings to a writer, and tally what could not be read.

Exit codes: 0 clean, 1 findings, 2 something could not be read (the scan is incomplete; findings, if
any, are still written). Binary files and FIFOs/devices are skipped and reported, not errors.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from jitsec.connectors.sources.files import FileEntry, FilesSource, PathFeed, WalkReport, walk
from jitsec.connectors.sources.stdin import StdinSource
from jitsec.scanner.baseline import Baseline
from jitsec.scanner.engine import Scanner

from jitsec.kernel.ports import Source, SourceErrors
from jitsec.kernel.records import Chunk, Finding
from jitsec.pipeline import PipelineStats, run_sources

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


@dataclass(slots=True)
class ScanResult:
    findings: int = 0
    baselined: int = 0
    files: int = 0
    bytes: int = 0
    skipped_binary: int = 0
    skipped_special: int = 0
    errors: SourceErrors = field(default_factory=SourceErrors)

    @property
    def exit_code(self) -> int:
        if self.errors.total:
            return EXIT_ERROR
        return EXIT_FINDINGS if self.findings else EXIT_CLEAN

    def summary(self) -> dict[str, object]:
        return {"findings": self.findings, "baselined": self.baselined, "files": self.files,
                "bytes": self.bytes, "skipped_binary": self.skipped_binary,
                "skipped_special": self.skipped_special, "errors": dict(self.errors.counts),
                "error_examples": list(self.errors.examples)}


def plan(paths: Sequence[str]) -> tuple[list[FileEntry], bool, SourceErrors, WalkReport]:
    """The files to read (walked up front, so a progress bar knows the total) and whether stdin is in."""
    errors, report = SourceErrors(), WalkReport()
    use_stdin = "-" in paths
    entries = list(walk((Path(p) for p in paths if p != "-"), errors, report))
    return entries, use_stdin, errors, report


def run_scan(
    paths: Sequence[str],
    scanner: Scanner,
    emit: Callable[[list[Finding]], None],
    *,
    baseline: Baseline | None = None,
    jobs: int = 1,
    chunk_size: int = 1 << 20,
    progress: Callable[[int], None] | None = None,
    planned: tuple[list[FileEntry], bool, SourceErrors, WalkReport] | None = None,
) -> ScanResult:
    """Scan ``paths`` (``-`` is stdin); ``emit`` gets each chunk's new findings, from one thread at a time."""
    baseline = baseline or Baseline()
    entries, use_stdin, walk_errors, report = planned or plan(paths)
    feed = PathFeed(entries)
    workers = max(1, min(jobs, len(entries)))
    files = [FilesSource(feed, chunk_size=chunk_size, report=report) for _ in range(workers)]
    sources: list[Source] = [*files] if entries else []
    if use_stdin:
        sources.append(StdinSource(chunk_size=chunk_size))
    result = ScanResult()
    lock = threading.Lock()

    def on_findings(chunk: Chunk, findings: list[Finding]) -> None:
        fresh = [f for f in findings if not baseline.accepts(f)]
        with lock:
            result.baselined += len(findings) - len(fresh)
            result.findings += len(fresh)
            if fresh:
                emit(fresh)
            if progress is not None:
                progress(len(chunk.data))

    stats: PipelineStats = run_sources(sources, scanner, on_findings) if sources else PipelineStats()
    result.errors = walk_errors
    for kind, count in stats.errors.counts.items():
        result.errors.counts[kind] = result.errors.counts.get(kind, 0) + count
    result.errors.examples.extend(stats.errors.examples[: max(0, 20 - len(result.errors.examples))])
    result.files = sum(source.files for source in files) + (1 if use_stdin else 0)
    result.bytes = stats.bytes
    result.skipped_binary = report.binary
    result.skipped_special = report.special
    return result
