"""Streams: consecutive chunks of one origin scanned as one text, each secret reported once."""

from __future__ import annotations

from typing import TYPE_CHECKING

from jitsec.scanner.filters import is_lock_path
from jitsec.scanner.pairs import pair_findings

from jitsec.kernel.records import Chunk, FileOrigin, Finding, GitOrigin, Origin

if TYPE_CHECKING:
    from jitsec.scanner.engine import Scanner

MULTILINE_OVERLAP = 16384  # bytes rescanned with the next chunk when multiline rules are loaded
MAX_CARRY = 1 << 20  # a line longer than this is scanned in pieces
LONG_LINE_OVERLAP = 4096  # overlap between the pieces of a very long line


def origin_path(origin: Origin) -> str | None:
    if isinstance(origin, FileOrigin | GitOrigin):
        return origin.path
    return None


class StreamScan:
    """Scans consecutive chunks of one origin as one stream.

    Complete lines are scanned as they arrive; a partial last line waits for the next chunk (up to
    ``MAX_CARRY`` bytes, then a very long line is scanned in overlapping pieces). When the rule set has
    multiline rules, the last ``MULTILINE_OVERLAP`` bytes are scanned again, for multiline rules only,
    with the next chunk so a PEM block split between chunks is found; a secret is reported once
    whatever the chunking.
    ``scanned_until`` is the absolute offset below which everything has been scanned and reported.
    Not thread-safe: one stream per origin per thread.
    """

    def __init__(self, scanner: Scanner, origin: Origin) -> None:
        self.scanner = scanner
        self.origin = origin
        self._skip_heuristic = is_lock_path(origin_path(origin))
        self._allow_pragmas = isinstance(origin, FileOrigin | GitOrigin)  # reviewed text, not a stream
        self._buffer = b""
        self._offset: int | None = None  # absolute offset of _buffer[0]
        self._line = 1
        self._line_start = 0  # absolute offset where the line holding _buffer[0] began
        self._read_at: float | None = None
        self._seen: set[tuple[str, int, str]] = set()
        self.scanned_until = 0

    def feed(self, chunk: Chunk) -> list[Finding]:
        if chunk.parts:  # a stream would read its parts as one text and lose where each is
            raise ValueError(f"{chunk.origin}: a chunk of several parts is scanned by Scanner.scan_whole")
        if self._offset is None:
            self._offset, self._line, self.scanned_until = chunk.offset, chunk.line, chunk.offset
            self._line_start = chunk.offset
        elif chunk.offset != self._offset + len(self._buffer):
            # Not contiguous (a source restarted or skipped): close the old stream, start anew.
            findings = self.finish()
            self._offset, self._line, self.scanned_until = chunk.offset, chunk.line, chunk.offset
            self._line_start = chunk.offset
            return findings + self.feed(chunk)
        self._read_at = chunk.read_at if chunk.read_at is not None else self._read_at
        data = self._buffer + chunk.data if self._buffer else chunk.data
        cut = data.rfind(b"\n") + 1
        if cut == 0 and len(data) < MAX_CARRY:
            self._buffer = data
            return []
        if len(data) - cut >= MAX_CARRY:
            # a very long last line (alone, or after shorter ones): scan a piece, keep an overlap, report
            # what cannot be cut. Waiting for its newline would keep, copy and rescan it at every chunk.
            cut = len(data)
            keep = report_until = cut - LONG_LINE_OVERLAP
            whole_only = True
        else:
            keep = cut
            if self.scanner.has_multiline and cut > MULTILINE_OVERLAP:
                keep = data.find(b"\n", cut - MULTILINE_OVERLAP, cut) + 1 or cut
            elif self.scanner.has_multiline:
                keep = 0
            report_until, whole_only = cut, False
        findings = self._scan(data[:cut], report_until, keep, whole_only=whole_only)
        self._advance(data, keep, scanned=report_until if whole_only else cut)
        return findings

    def finish(self) -> list[Finding]:
        """Scan what is left (a last line without newline); the stream may be fed again afterwards."""
        if self._offset is None or self._offset + len(self._buffer) <= self.scanned_until:
            return []  # nothing arrived since the last scan: a rescan could find nothing new
        data = self._buffer
        findings = self._scan(data, len(data), len(data), whole_only=False)
        self._advance(data, len(data), scanned=len(data))
        self._seen.clear()
        return findings

    def _scan(self, data: bytes, report_until: int, keep: int, *, whole_only: bool) -> list[Finding]:
        assert self._offset is not None
        findings: list[Finding] = []
        seen_next: set[tuple[str, int, str]] = set()
        fresh_from = max(0, self.scanned_until - self._offset)
        counted_to, line = 0, self._line  # newlines are counted once, up to each finding in turn
        found = self.scanner.matches(data, skip_heuristic=self._skip_heuristic, fresh_from=fresh_from,
                                     allow_pragmas=self._allow_pragmas)
        spans = [(match.position, match.end) for match in found]
        for match in found:
            if match.position >= report_until or (whole_only and match.end >= len(data)):
                continue
            line += data.count(b"\n", counted_to, match.position)
            counted_to = match.position
            finding = self.scanner.finding(match, self.origin, data, base_offset=self._offset, line=line,
                                           read_at=self._read_at, spans=spans,
                                           line_start=self._line_start)
            key = (finding.rule_id, finding.offset, finding.fingerprint)
            if match.position >= keep:
                seen_next.add(key)
            if key in self._seen:
                self.scanner.stats.confirm(finding.rule_id, -1)
                continue
            findings.append(finding)
        self._seen = seen_next
        return pair_findings(findings, self.scanner.pairings)

    def _advance(self, data: bytes, keep: int, *, scanned: int) -> None:
        assert self._offset is not None
        self.scanned_until = self._offset + scanned
        lines = data.count(b"\n", 0, keep)
        if lines:
            self._line_start = self._offset + data.rfind(b"\n", 0, keep) + 1
        self._line += lines
        self.scanner.stats.add_lines(lines)
        self._offset += keep
        self._buffer = data[keep:]
