"""The scanner: candidates (Hyperscan or keywords) → confirm the rule's regex on a small window →
rule checks → generic hard negatives → finding. Everything is compiled in ``Scanner.__init__``; the
scan loop reads no settings and does no I/O.

Positions are bytes: buffers are read as latin-1 (one character per byte), so offsets and columns are
byte offsets and byte columns (1-based), and line numbers are counted only where a finding is.
"""

from __future__ import annotations

import hashlib
import threading
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import regex
from jitsec.scanner.allowlist import ContentAllowlist
from jitsec.scanner.decoders import decode_variants, marker_lines
from jitsec.scanner.filters import (
    INLINE_ALLOWS,
    PRAGMA_NEXTLINE,
    is_generic_negative,
    is_lock_path,
    passes_rule,
    shannon_entropy,
)
from jitsec.scanner.fingerprint import Fingerprinter, SecretHasher, context_digest
from jitsec.scanner.key_fingerprint import derived_fingerprint
from jitsec.scanner.matchers import WHOLE, HyperscanMatcher, KeywordIndex, KeywordMatcher, hyperscan_available
from jitsec.scanner.pairs import pair_findings, pairings
from jitsec.scanner.ruleset import Rule, RuleSet
from jitsec.scanner.stream import LONG_LINE_OVERLAP, MAX_CARRY, StreamScan, origin_path
from jitsec.scanner.validators import BROKER_VALIDATORS

from jitsec.kernel.credential_format import sha256_fingerprint
from jitsec.kernel.records import (
    BrokerStatus,
    Chunk,
    Confidence,
    FileOrigin,
    Finding,
    GitOrigin,
    Origin,
    Part,
    part_origin,
)
from jitsec.kernel.redaction import preview

__all__ = ["LONG_LINE_OVERLAP", "MAX_CARRY", "MULTILINE_WINDOW", "EngineName", "ScanStats", "Scanner",
           "StreamScan"]

EngineName = Literal["auto", "hyperscan", "python"]

LINE_WINDOW = 4096  # bytes either side of a hit a single-line rule is confirmed in (within its line)
MULTILINE_WINDOW = 16384  # bytes either side of a hit for multiline rules (a PEM block fits)
_BEFORE = 256  # bytes of line before a match given to context checks
_AFTER = 32  # bytes of line after a secret given to the rule's judge
CONTEXT_REACH = 256  # bytes of a finding's line either side of it in its context digest (SARIF)
# Seconds a rule's regex may run on one confirmation window (a few KiB). Far above what a sane pattern
# needs (microseconds); a pattern that backtracks catastrophically (a user's gitleaks config, a pack in
# review) is stopped there and reported, instead of hanging the scan.
REGEX_TIMEOUT = 0.25


@dataclass(slots=True)
class RuleStats:
    candidates: int = 0  # windows confirmed in Python
    confirmed: int = 0  # findings emitted
    stopped: int = 0  # windows where the rule's regex ran past REGEX_TIMEOUT and was stopped


class ScanStats:
    """Counters per rule and totals; safe to update from many threads."""

    def __init__(self, rule_ids: list[str]) -> None:
        self._lock = threading.Lock()
        self._ids = rule_ids
        self.rules: dict[str, RuleStats] = {rule_id: RuleStats() for rule_id in rule_ids}
        self.bytes_scanned = 0  # includes overlap rescanned between chunks
        self.decoded_lines = 0
        self.lines = 0

    def add(self, candidates: dict[int, int], scanned: int, decoded: int) -> None:
        with self._lock:
            for index, count in candidates.items():
                self.rules[self._ids[index]].candidates += count
            self.bytes_scanned += scanned
            self.decoded_lines += decoded

    def add_lines(self, count: int) -> None:
        with self._lock:
            self.lines += count

    def confirm(self, rule_id: str, count: int = 1) -> None:
        with self._lock:
            self.rules[rule_id].confirmed += count

    def stop(self, rule_id: str) -> None:
        with self._lock:
            self.rules[rule_id].stopped += 1

    @property
    def stopped(self) -> dict[str, int]:
        """Rules whose regex was stopped (catastrophic backtracking), with how often: their findings
        in those windows are missing, so a scan that stopped one is incomplete."""
        with self._lock:
            return {rule_id: counts.stopped for rule_id, counts in self.rules.items() if counts.stopped}

    @property
    def candidates(self) -> int:
        return sum(s.candidates for s in self.rules.values())

    def as_dict(self) -> dict[str, object]:
        with self._lock:
            return {
                "bytes_scanned": self.bytes_scanned,
                "lines": self.lines,
                "decoded_lines": self.decoded_lines,
                "rules": {k: {"candidates": v.candidates, "confirmed": v.confirmed}
                          for k, v in self.rules.items() if v.candidates or v.confirmed},
            }


@dataclass(frozen=True, slots=True)
class _Match:
    """A confirmed match in buffer coordinates; lives only inside the engine (holds the secret)."""

    rule_index: int
    position: int
    secret: str
    end: int
    decoded: bool = False


class Scanner:
    """Finds secrets in bytes. Thread-safe: one instance serves every source thread."""

    def __init__(
        self,
        ruleset: RuleSet,
        fingerprinter: Fingerprinter,
        *,
        engine: EngineName = "auto",
        live_fingerprints: Callable[[str], bool] | None = None,
        ignored_sha1: frozenset[str] = frozenset(),
        cache_dir: Path | None = None,
        allowlist: ContentAllowlist | None = None,
        secret_hasher: SecretHasher | None = None,
    ) -> None:
        """``live_fingerprints(sha256_hex)`` says whether a candidate is a live credential the caller
        knows (CONFIRMED); ``ignored_sha1`` holds SHA-1s of accepted secrets (detect-secrets
        baselines); ``cache_dir`` is where the compiled Hyperscan database is kept; ``allowlist``
        holds a project's or gitleaks config's global allowlist (never applied to broker credentials);
        ``secret_hasher`` gives the findings a baseline asks about their ``secret_hash`` (portable
        baselines)."""
        self.ruleset = ruleset
        self.fingerprinter = fingerprinter
        self.rules: tuple[Rule, ...] = ruleset.rules
        self.published_examples = ruleset.published_examples
        self.live_fingerprints = live_fingerprints
        self.ignored_sha1 = ignored_sha1
        self.allowlist = allowlist or None
        self.secret_hasher = secret_hasher
        self.stats = ScanStats([rule.id for rule in self.rules])
        self.has_multiline = any(rule.multiline for rule in self.rules)
        self.pairings = pairings(self.rules)  # companion rule id → (partners, window in lines)
        if engine == "python" or (engine == "auto" and not hyperscan_available()):
            self.matcher: KeywordMatcher | HyperscanMatcher = KeywordMatcher(self.rules)
        else:
            self.matcher = HyperscanMatcher(self.rules, ruleset.digest, cache_dir)
        self.engine: str = self.matcher.name
        self._marker_id = len(self.rules)  # the matcher's id for "line with an encoding marker"
        self.keyword_index = KeywordIndex(self.rules, use_hyperscan=self.engine == "hyperscan")

    # -- public API -----------------------------------------------------------------------------

    def stream(self, origin: Origin) -> StreamScan:
        return StreamScan(self, origin)

    def scan_bytes(self, data: bytes, origin: Origin, *, offset: int = 0, line: int = 1) -> list[Finding]:
        return self._scan_alone(Chunk(data=data, origin=origin, offset=offset, line=line))

    def _scan_alone(self, chunk: Chunk) -> list[Finding]:
        stream = self.stream(chunk.origin)
        return stream.feed(chunk) + stream.finish()

    def candidate_secrets(self, data: bytes) -> list[tuple[str, str]]:
        """``(rule_id, secret)`` for every confirmed match in ``data``, in position order.

        Plaintext on purpose, for the one caller that must try a candidate at the resource (the
        conformance suite playing the attacker); everything else works with findings. Never log,
        store or print what this returns.
        """
        return [(self.rules[m.rule_index].id, m.secret) for m in self.matches(data)]

    # -- the pipeline of one buffer ---------------------------------------------------------------

    def scan_whole(self, chunks: Sequence[Chunk]) -> list[list[Finding]]:
        """The findings of each chunk, as ``scan_bytes`` would give them one by one, in one pass.

        For sources of many small units (Kafka records, document fields): one matcher call over all of
        them instead of a stream each. Every chunk must be ``whole`` (all of its origin, ending with a
        newline); no match, window or pragma reaches from one chunk into the next, nor from one of a
        chunk's ``parts`` into the next (each is located by its own origin). A lock file keeps
        its own leniency, so then each chunk is scanned on its own.
        """
        reviewed = [isinstance(chunk.origin, FileOrigin | GitOrigin) for chunk in chunks]
        if any(is_lock_path(origin_path(chunk.origin)) for chunk in chunks) or len(set(reviewed)) > 1:
            # each keeps its own leniency (lock files, pragmas only in reviewed text)
            return [[f for part in chunk.split_parts() for f in self._scan_alone(part)] for chunk in chunks]
        data = b"".join([chunk.data for chunk in chunks])
        starts: list[int] = []  # where each chunk begins in data
        bounds: list[int] = []  # where each independent text (a chunk, or a part of one) begins
        cursor = 0
        for chunk in chunks:
            if not chunk.whole or not chunk.data.endswith(b"\n"):
                raise ValueError(f"{chunk.origin}: not a whole, newline-terminated chunk")
            starts.append(cursor)
            if chunk.parts:
                if chunk.parts[0][0] != 0:
                    raise ValueError(f"{chunk.origin}: its first part does not start at 0")
                bounds.extend([cursor + start for start, _, _ in chunk.parts])
            else:
                bounds.append(cursor)
            cursor += len(chunk.data)
        results: list[list[Finding]] = [[] for _ in chunks]
        # pragmas count in files and diffs, not in records and document fields (a log writer's words)
        found = self.matches(data, bounds=bounds, allow_pragmas=all(reviewed))
        spans = [(match.position, match.end) for match in found]
        for match in found:  # few: cheap to count
            index = bisect_right(starts, match.position) - 1
            chunk, start = chunks[index], starts[index]
            origin = chunk.origin
            if chunk.parts:  # located in its part: offsets and lines count from the part's start
                part_start, record, field = chunk.parts[
                    bisect_right(chunk.parts, match.position - start, key=_part_start) - 1]
                start += part_start
                origin = part_origin(origin, record, field)
                base, first_line = -start, 1
            else:
                base, first_line = chunk.offset - start, chunk.line
            line = first_line + data.count(b"\n", start, match.position)
            results[index].append(self.finding(match, origin, data, base_offset=base, line=line,
                                               read_at=chunk.read_at, spans=spans))
        self.stats.add_lines(data.count(b"\n"))
        return [pair_findings(found_in_chunk, self.pairings) for found_in_chunk in results]

    def matches(
        self,
        data: bytes,
        *,
        skip_heuristic: bool = False,
        fresh_from: int = 0,
        bounds: Sequence[int] | None = None,
        allow_pragmas: bool = True,
    ) -> list[_Match]:
        """Every match in ``data`` passing all checks, deduplicated, in position order.

        ``allow_pragmas`` is for files and repositories, where a reviewer marks a false positive with an
        inline marker (``INLINE_ALLOWS``, ``PRAGMA_NEXTLINE``); streams (logs, Kafka, stdin) give False,
        since there the text is whoever wrote the log line. Pragmas, the global allowlist and
        detect-secrets baselines never hide a broker-format credential or one whose SHA-256 is a live
        lease's.

        Bytes before ``fresh_from`` (a line start) were scanned before and are here again only so that
        a multiline match can complete: there, only multiline rules are confirmed and nothing is decoded.
        ``bounds`` (sorted offsets, the first 0) cut ``data`` into independent texts: no confirmation
        window, and so no match, spans two of them.
        """
        candidates: dict[int, int] = {}
        hits = self.matcher.hits(data)
        marker_ends: list[int] | None = None
        if self.matcher.reports_markers:
            marker = self._marker_id
            marker_ends = [end for index, _, end in hits if index == marker and end >= fresh_from]
            hits = [hit for hit in hits if hit[0] != marker]
        if fresh_from:
            rules = self.rules
            hits = [hit for hit in hits if hit[2] >= fresh_from or hit[1] == WHOLE or rules[hit[0]].multiline]
        found = self._confirm(data, hits, candidates, skip_heuristic, bounds, allow_pragmas=allow_pragmas)
        decoded = 0
        replaced: list[tuple[int, int]] = []  # original spans a decoded pass judged instead of the raw one
        for start, end in self._lines_to_decode(data, marker_ends, fresh_from):
            line = data[start:end].decode("latin-1")
            for variant in decode_variants(line):
                decoded += 1
                replaced.extend((start + s[2], start + s[3]) for s in variant.segments)
                raw = variant.text.encode("latin-1", "replace")
                variant_hits = [h for h in self.matcher.hits(raw) if h[0] != self._marker_id]
                for match in self._confirm(raw, variant_hits, candidates, skip_heuristic,
                                           allow_pragmas=allow_pragmas):
                    position = start + variant.original_position(match.position)
                    end_position = start + variant.original_position(max(match.end - 1, 0)) + 1
                    found.append(_Match(match.rule_index, position, match.secret, end_position, True))
        self.stats.add(candidates, len(data), decoded)
        if replaced:
            found = [m for m in found if m.decoded or not _overlaps(m, replaced)]
        return _most_specific(_unique(found), self.rules)

    def _lines_to_decode(
        self, data: bytes, marker_ends: list[int] | None, fresh_from: int
    ) -> list[tuple[int, int]]:
        """Fresh marker lines that also hold a keyword of some rule: one keyword scan over all of them."""
        if marker_ends is None:
            lines = [line for line in marker_lines(data) if line[1] >= fresh_from]
        else:
            lines = [(data.rfind(b"\n", 0, end) + 1, end) for end in marker_ends]
        if not lines:
            return []
        joined = b"\n".join(data[start:end] for start, end in lines)
        starts, cursor = [], 0
        for start, end in lines:
            starts.append(cursor)
            cursor += end - start + 1
        chosen = {bisect_right(starts, position) - 1 for position in self.keyword_index.positions(joined)}
        return [lines[index] for index in sorted(chosen)]

    def _confirm(
        self,
        data: bytes,
        hits: list[tuple[int, int, int]],
        candidates: dict[int, int],
        skip_heuristic: bool,
        bounds: Sequence[int] | None = None,
        *,
        allow_pragmas: bool = True,
    ) -> list[_Match]:
        size = len(data)
        pieces = list(bounds or [0])
        ends = [*pieces[1:], size]
        windows: dict[tuple[int, int], list[tuple[int, int]]] = {}  # (rule, piece start) → windows
        for index, start, end in hits:
            if start == WHOLE:
                for low, high in zip(pieces, ends, strict=True):
                    windows.setdefault((index, low), []).append((low, high))
                continue
            reach = MULTILINE_WINDOW if self.rules[index].multiline else LINE_WINDOW
            low = max(0, start - reach)
            high = min(size, end + reach)
            if self.rules[index].multiline:
                window_start = data.rfind(b"\n", 0, low) + 1 if low else 0
                window_end = high
            else:
                window_start = max(low, data.rfind(b"\n", low, start) + 1)
                newline = data.find(b"\n", end, high)
                window_end = high if newline < 0 else newline
            piece = bisect_right(pieces, max(end - 1, 0)) - 1
            floor, ceiling = pieces[piece], ends[piece]
            window = (max(window_start, floor), min(window_end, ceiling))
            windows.setdefault((index, floor), []).append(window)
        found: list[_Match] = []
        for (index, floor), spans in windows.items():
            rule = self.rules[index]
            for window_start, window_end in _merge(spans):
                candidates[index] = candidates.get(index, 0) + 1
                text = data[window_start:window_end].decode("latin-1")
                try:
                    for match in rule.pattern.finditer(text, timeout=REGEX_TIMEOUT):
                        result = self._check(rule, data, window_start, match, skip_heuristic, floor,
                                             allow_pragmas)
                        if result is not None:
                            found.append(_Match(index, *result))
                except TimeoutError:
                    self.stats.stop(rule.id)
        return found

    def _check(  # noqa: PLR0911, PLR0917 - one early exit per check, cheapest first
        self, rule: Rule, data: bytes, base: int, match: regex.Match[str], skip_heuristic: bool, floor: int,
        allow_pragmas: bool = True,
    ) -> tuple[int, str, int] | None:
        """``floor``: where the text the match belongs to starts (a pragma above it does not count)."""
        try:
            secret = match.group(rule.secret_group)
        except (IndexError, KeyError):
            return None
        if not secret:
            return None
        secret_start = base + match.start(rule.secret_group)
        line_start = data.rfind(b"\n", 0, secret_start) + 1
        before = data[max(line_start, secret_start - _BEFORE):secret_start].decode("latin-1")
        after = ""
        if rule.judge is not None:
            secret_end = base + match.end(rule.secret_group)
            line_end = data.find(b"\n", secret_end, secret_end + _AFTER)
            after = data[secret_end:secret_end + _AFTER if line_end < 0 else line_end].decode("latin-1")
        if not passes_rule(rule, secret, before, after):
            return None
        if secret in self.published_examples and rule.validator not in BROKER_VALIDATORS:
            return None
        if rule.validator is None and (skip_heuristic or is_generic_negative(secret, before)):
            return None
        position = base + match.start() if rule.multiline else secret_start
        accepted = (allow_pragmas and _has_pragma(data, position, floor)) or (
            bool(self.ignored_sha1)
            and hashlib.sha1(_utf8(secret), usedforsecurity=False).hexdigest() in self.ignored_sha1) or (
            self.allowlist is not None and self.allowlist.allows(
                secret, _line_at(data, line_start, secret_start), match.group(0)))
        if accepted and rule.validator not in BROKER_VALIDATORS and not self._is_live(secret):
            return None
        return position, secret, base + match.end()

    def _is_live(self, secret: str) -> bool:
        """Whether ``secret`` is a live broker credential (by SHA-256), when the caller knows them."""
        live = self.live_fingerprints
        if live is None:
            return False
        derived = derived_fingerprint(secret)
        return live(sha256_fingerprint(_utf8(secret))) or (derived is not None and live(derived))

    def finding(self, match: _Match, origin: Origin, data: bytes, *, base_offset: int, line: int,
                read_at: float | None, spans: Sequence[tuple[int, int]] = (),
                line_start: int | None = None) -> Finding:
        """Turn an internal match into a Finding: from here on only preview and fingerprints exist.
        ``line`` is the line number of ``match.position`` (the caller counts newlines once); ``spans``
        (sorted by start) are the other matches in ``data``, masked with this one in its context;
        ``line_start`` the absolute offset where that line began, when ``data`` may start inside it."""
        rule = self.rules[match.rule_index]
        newline = data.rfind(b"\n", 0, match.position)
        if newline < 0 and line_start is not None:
            column = base_offset + match.position - line_start + 1
        else:
            column = match.position - newline
        last = max(match.end, match.position + 1) - 1  # the match's last byte
        end_line = line + data.count(b"\n", match.position, last)
        sha = None
        broker = None
        confidence = Confidence.STRUCTURAL if rule.validator else Confidence.HEURISTIC
        if rule.validator in BROKER_VALIDATORS:
            sha = sha256_fingerprint(_utf8(match.secret))
            broker = BrokerStatus.UNKNOWN
        if self.live_fingerprints is not None:
            candidate_sha = sha or sha256_fingerprint(_utf8(match.secret))
            if self.live_fingerprints(candidate_sha):
                sha, confidence = candidate_sha, Confidence.CONFIRMED
            elif (derived := derived_fingerprint(match.secret)) and self.live_fingerprints(derived):
                sha, confidence = derived, Confidence.CONFIRMED  # a private key whose certificate is live
        self.stats.confirm(rule.id)
        return Finding(
            rule_id=rule.id,
            origin=origin,
            line=line,
            column=column,
            offset=base_offset + match.position,
            preview=preview(match.secret),
            fingerprint=self.fingerprinter.fingerprint(match.secret),
            severity=rule.severity,
            confidence=confidence,
            description=rule.description,
            credential_sha256=sha,
            broker=broker,
            read_at=read_at,
            end_line=end_line,
            end_column=last - data.rfind(b"\n", 0, last),
            entropy=round(shannon_entropy(match.secret), 4),
            context=_context(match, data, spans),
            # a broker-format or live credential is never accepted by a baseline: no slow hash for it
            secret_hash=(self.secret_hasher.digest(rule.id, origin, match.secret)
                         if self.secret_hasher is not None and sha is None else None),
        )


def _context(match: _Match, data: bytes, spans: Sequence[tuple[int, int]]) -> str:
    """The masked-line digest of a match: its line, at most ``CONTEXT_REACH`` bytes either side (a
    minified file's one huge line costs no more than a short one), with its own span, every other
    match starting there and any other copy of its secret masked."""
    floor = max(0, match.position - CONTEXT_REACH)
    start = max(floor, data.rfind(b"\n", floor, match.position) + 1)
    ceiling = min(len(data), max(match.end, match.position) + CONTEXT_REACH)
    end = data.find(b"\n", match.position, ceiling)
    end = ceiling if end < 0 else end
    line = data[start:end]
    masked = [(match.position - start, match.end - start)]
    first = bisect_left(spans, start, key=_span_start)
    for span_start, span_end in spans[first:bisect_left(spans, end, key=_span_start)]:
        masked.append((span_start - start, span_end - start))
    if not match.decoded:
        secret = match.secret.encode("latin-1")
        at = line.find(secret)
        while at >= 0:
            masked.append((at, at + len(secret)))
            at = line.find(secret, at + len(secret))
    return context_digest(line, masked)


def _span_start(span: tuple[int, int]) -> int:
    return span[0]


def _part_start(part: Part) -> int:
    return part[0]


def _utf8(secret: str) -> bytes:
    """Decoded JSON escapes may hold lone surrogates; hash them rather than fail."""
    return secret.encode("utf-8", "surrogatepass")


def _overlaps(match: _Match, spans: list[tuple[int, int]]) -> bool:
    return any(start < match.end and match.position < end for start, end in spans)


def _unique(found: list[_Match]) -> list[_Match]:
    """One match per rule and position. Where a decoded pass found a secret at the same place as the
    raw pass, the decoded one is the real secret (the raw one still carries escapes)."""
    best: dict[tuple[int, int], _Match] = {}
    for match in found:
        key = (match.rule_index, match.position)
        current = best.get(key)
        if current is None or (match.decoded and not current.decoded):
            best[key] = match
    return sorted(best.values(), key=lambda m: (m.position, m.rule_index))


def _most_specific(found: list[_Match], rules: tuple[Rule, ...]) -> list[_Match]:
    """One finding per secret occurrence: where a named format and a generic rule caught the same
    secret at the same place, the named format wins (a checksummed one first), so an analyst sees
    `aws-access-key-id`, not that and `generic-secret` twice over."""
    best: dict[tuple[int, str], _Match] = {}
    for match in found:
        key = (match.position, match.secret)
        current = best.get(key)
        if current is None or _specificity(rules[match.rule_index]) > _specificity(rules[current.rule_index]):
            best[key] = match
    return sorted(best.values(), key=lambda m: (m.position, m.rule_index))


def _specificity(rule: Rule) -> tuple[bool, bool]:
    return (rule.validator is not None, "generic" not in rule.tags)


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    spans.sort()
    merged = [spans[0]]
    for start, end in spans[1:]:
        last_start, last_end = merged[-1]
        if start <= last_end:
            if end > last_end:
                merged[-1] = (last_start, end)
        else:
            merged.append((start, end))
    return merged


def _line_at(data: bytes, line_start: int, position: int) -> str:
    line_end = data.find(b"\n", position)
    return data[line_start: len(data) if line_end < 0 else line_end].decode("latin-1")


_INLINE_MARKERS = tuple(marker.encode() for marker in INLINE_ALLOWS)


def _has_pragma(data: bytes, position: int, floor: int = 0) -> bool:
    line_start = data.rfind(b"\n", 0, position) + 1
    line_end = data.find(b"\n", position)
    line = data[line_start: len(data) if line_end < 0 else line_end]
    if any(marker in line for marker in _INLINE_MARKERS):
        return True
    if line_start > floor:
        previous = data[data.rfind(b"\n", 0, line_start - 1) + 1: line_start]
        return PRAGMA_NEXTLINE.encode() in previous
    return False
