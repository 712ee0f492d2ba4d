"""One ``jitsec scan`` run over paths and addresses, independent of click: plan the files, read them
with ``--jobs`` sources sharing one queue, read addresses once, tally what the stages let through.

Exit codes: 0 clean, 1 findings, 2 something could not be read (the scan is incomplete; findings, if
any, are still written). Binary files and FIFOs/devices are skipped and reported, not errors; so are
paths git ignores or the excludes leave out (``jitsec.pipeline.ignores``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from jitsec.connectors.address import SourceAddressError, open_source
from jitsec.connectors.sources.files import BinaryMode, FileEntry, FilesSource, PathFeed, WalkReport, walk
from jitsec.connectors.sources.git import GitHistorySource
from jitsec.connectors.sources.stdin import StdinSource
from jitsec.kernel.ports import Source, SourceErrors
from jitsec.kernel.records import Chunk, Finding
from jitsec.pipeline.builder import Pipeline
from jitsec.pipeline.ignores import Ignores
from jitsec.pipeline.runner import PipelineStats

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


@dataclass(slots=True)
class ScanResult:
    findings: int = 0
    baselined: int = 0
    files: int = 0
    bytes: int = 0
    skipped_binary: int = 0
    skipped_special: int = 0
    skipped_ignored: int = 0  # files and folders git ignores (a folder counts once)
    skipped_excluded: int = 0  # files and folders --exclude or allowlisted paths leave out
    allowlisted: int = 0  # findings dropped by fingerprints, commits, history paths, severity
    errors: SourceErrors = field(default_factory=SourceErrors)

    @property
    def exit_code(self) -> int:
        if self.errors.total:
            return EXIT_ERROR
        return EXIT_FINDINGS if self.findings else EXIT_CLEAN

    def summary(self) -> dict[str, object]:
        return {"findings": self.findings, "baselined": self.baselined, "files": self.files,
                "bytes": self.bytes, "skipped_binary": self.skipped_binary,
                "skipped_special": self.skipped_special, "skipped_ignored": self.skipped_ignored,
                "skipped_excluded": self.skipped_excluded, "allowlisted": self.allowlisted,
                "errors": dict(self.errors.counts),
                "error_examples": list(self.errors.examples)}

    def add_stats(self, stats: PipelineStats) -> None:
        self.bytes += stats.bytes
        merge_errors(self.errors, stats.errors)


def merge_errors(into: SourceErrors, errors: SourceErrors) -> None:
    for kind, count in errors.counts.items():
        into.counts[kind] = into.counts.get(kind, 0) + count
    room = max(0, into.max_examples - len(into.examples))
    into.examples.extend(errors.examples[:room])


class Tally:
    """The stage that counts what reaches it into a ``ScanResult`` and moves the progress bar."""

    def __init__(self, result: ScanResult, progress: Callable[[int], None] | None = None) -> None:
        self.result = result
        self.progress = progress
        self._lock = threading.Lock()

    def process(self, chunk: Chunk, findings: list[Finding]) -> list[Finding]:
        with self._lock:
            self.result.findings += len(findings)
            if self.progress is not None:
                self.progress(len(chunk.data))
        return findings

    def close(self) -> None:
        """Nothing held."""


@dataclass(frozen=True, slots=True)
class PathPlan:
    """The files to read (walked up front, so a progress bar knows the total) and whether stdin is in."""

    entries: list[FileEntry]
    use_stdin: bool
    errors: SourceErrors
    report: WalkReport

    @property
    def total_bytes(self) -> int:
        return sum(entry.size for entry in self.entries)


def plan(paths: Sequence[str], ignores: Ignores | None = None) -> PathPlan:
    """Walk ``paths`` up front, leaving out what ``ignores`` says (git-ignored and excluded paths)."""
    errors, report = SourceErrors(), WalkReport()
    skips = ignores.path_skips if ignores is not None else None
    entries = list(walk((Path(p) for p in paths if p != "-"), errors, report, skips))
    return PathPlan(entries, "-" in paths, errors, report)


def scan_paths(pipeline: Pipeline, planned: PathPlan, result: ScanResult, *, jobs: int = 1,
               chunk_size: int = 1 << 20, binary: BinaryMode = "skip") -> None:
    """Scan the planned files (``jobs`` at a time) and stdin; counts and errors go to ``result``."""
    feed = PathFeed(planned.entries)
    workers = max(1, min(jobs, len(planned.entries)))
    files = [FilesSource(feed, chunk_size=chunk_size, report=planned.report, large_only=index > 0,
                         binary=binary) for index in range(workers)]
    sources: list[Source] = [*files] if planned.entries else []
    if planned.use_stdin:
        sources.append(StdinSource(chunk_size=chunk_size))
    merge_errors(result.errors, planned.errors)
    result.add_stats(pipeline.run(sources))
    result.files += sum(source.files for source in files) + (1 if planned.use_stdin else 0)
    result.skipped_binary += planned.report.binary
    result.skipped_special += planned.report.special
    result.skipped_ignored += planned.report.ignored
    result.skipped_excluded += planned.report.excluded


def scan_addresses(pipeline: Pipeline, addresses: Sequence[str], result: ScanResult) -> None:
    """Read ``git:``/``kafka://``/``elasticsearch://`` sources once; counts and errors go to ``result``."""
    try:
        sources = [open_source(address, follow=False) for address in addresses]
    except SourceAddressError as exc:
        result.errors.record("source", str(exc))
        return
    result.add_stats(pipeline.run(sources))
    result.files += sum(source.stats.blobs_scanned for source in sources
                        if isinstance(source, GitHistorySource))
