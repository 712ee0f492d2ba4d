"""Candidate generation: where in a buffer each rule may match. Confirmation happens in the engine.

Two interchangeable matchers return ``(rule_index, start, end)`` hits:
- ``HyperscanMatcher``: one Hyperscan database for all rules (the rule's ``hyperscan`` prefilter, or
  its own regex with large repeat bounds relaxed), reporting match ends only: start-of-match
  tracking costs an order of magnitude in scan speed and the engine confirms on the whole line
  anyway. Rules Hyperscan rejects are retried in prefilter mode, then fall back to keyword search.
  Cached on disk by rule-set digest.
- ``KeywordMatcher``: pure Python, case-insensitive ``bytes.find`` of each rule's keywords.
Both guarantee every true match of a rule has a hit on its line (or, for multiline rules, nearby).
The Hyperscan database also reports the end of every line carrying an encoding marker (one report
per line), so the decoders need no second pass over the buffer.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

from jitsec.scanner.cache import default_cache_dir
from jitsec.scanner.ruleset import Rule

from jitsec.kernel.lazy_regex import LazyPattern

try:  # Hyperscan is optional at run time: the pure-Python path gives the same results.
    import hyperscan

    _HAVE_HYPERSCAN = True
except ImportError:  # pragma: no cover - exercised only where the wheel is missing
    _HAVE_HYPERSCAN = False

_BOUNDED = LazyPattern(r"(?<!\\)\{(\d+),(\d+)\}")
_NAMED_GROUP = LazyPattern(r"(?<!\\)\(\?P<[A-Za-z_][A-Za-z0-9_]*>")
_MAX_BOUND = 32
# Bump when ``relax_bounds`` or the flags change: cached databases were built from the old patterns.
PREFILTER_FORMAT = 2
KEEP_DATABASES = 8  # compiled rule databases kept in the cache (a few MB each)
WHOLE = -1  # a hit start meaning "the whole buffer" (rules without keywords on the Python path)
Hit = tuple[int, int, int]
# Base64 hides every keyword of a `Basic` credential, so the scheme name itself triggers decoding.
BASIC_TRIGGER = b"basic "
# The same markers as ``scanner.decoders.marker_lines``; reported once per line, at its end.
MARKER_LINE = rb"(?:%[0-9A-Fa-f]{2}|\\[nrtbfu/]|[Bb]asic )[^\n]*$"


def hyperscan_available() -> bool:
    return _HAVE_HYPERSCAN


class KeywordMatcher:
    """Hits at every case-insensitive occurrence of a rule's keywords."""

    name = "python"
    reports_markers = False
    fallback: Sequence[int] = ()  # the rules a Hyperscan matcher leaves to keyword search: none here

    def __init__(self, rules: Sequence[Rule], indices: Sequence[int] | None = None) -> None:
        chosen = range(len(rules)) if indices is None else indices
        by_keyword: dict[bytes, list[int]] = {}
        self._always: list[int] = []
        for index in chosen:
            keywords = rules[index].keywords
            if not keywords:
                self._always.append(index)
            for keyword in keywords:
                by_keyword.setdefault(keyword.encode("latin-1", "replace"), []).append(index)
        self._keywords = tuple((k, tuple(v)) for k, v in by_keyword.items())

    def hits(self, data: bytes) -> list[Hit]:
        found: list[Hit] = [(index, WHOLE, WHOLE) for index in self._always]
        if not self._keywords:
            return found
        lowered = data.lower()
        for keyword, indices in self._keywords:
            size = len(keyword)
            position = lowered.find(keyword)
            while position >= 0:
                end = position + size
                found.extend((index, position, end) for index in indices)
                position = lowered.find(keyword, end)
        return found


class KeywordIndex:
    """Positions of any rule keyword in a buffer (case-insensitive): which marker lines deserve a
    decoding pass. Hyperscan literal database when available, else ``bytes.find``; same answers."""

    def __init__(self, rules: Sequence[Rule], *, use_hyperscan: bool) -> None:
        keywords = sorted({k.encode("latin-1", "replace") for rule in rules for k in rule.keywords}
                          | {BASIC_TRIGGER})
        self._keywords = tuple(keywords)
        self._use_hyperscan = use_hyperscan and bool(keywords) and _HAVE_HYPERSCAN
        self._database: hyperscan.Database | None = None
        self._build_lock = threading.Lock()
        self._local = threading.local()

    def _hyperscan_database(self) -> hyperscan.Database | None:
        """Compiled on first use: only a buffer with a marker line needs it, and compiling it costs a
        pre-commit hook more than the scan of a typical commit."""
        if self._use_hyperscan and self._database is None:
            with self._build_lock:
                if self._database is None:
                    database = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
                    database.compile(expressions=list(self._keywords), ids=list(range(len(self._keywords))),
                                     elements=len(self._keywords), flags=hyperscan.HS_FLAG_CASELESS,
                                     literal=True)
                    self._database = database
        return self._database

    def positions(self, data: bytes) -> list[int]:
        database = self._hyperscan_database()
        if database is not None:
            found: list[int] = []
            scratch = getattr(self._local, "scratch", None)
            if scratch is None:
                scratch = self._local.scratch = hyperscan.Scratch(database)

            def on_match(index: int, start: int, end: int, flags: int, context: object) -> None:
                found.append(end - len(self._keywords[index]))

            database.scan(data, match_event_handler=on_match, scratch=scratch)
            return found
        lowered = data.lower()
        result = []
        for keyword in self._keywords:
            position = lowered.find(keyword)
            while position >= 0:
                result.append(position)
                position = lowered.find(keyword, position + 1)
        return result


class HyperscanMatcher:
    """All rules in one Hyperscan block-mode database; a scratch per thread (scratch is not shareable)."""

    name = "hyperscan"
    reports_markers = True

    def __init__(self, rules: Sequence[Rule], digest: str, cache_dir: Path | None = None) -> None:
        if not _HAVE_HYPERSCAN:
            raise RuntimeError("the hyperscan package is not installed")
        self._local = threading.local()
        self.cache_dir = default_cache_dir() if cache_dir is None else cache_dir
        self.marker_id = len(rules)
        self.database, self.compiled, self.fallback = self._load_or_build(rules, digest)
        self._fallback = KeywordMatcher(rules, self.fallback) if self.fallback else None

    def hits(self, data: bytes) -> list[Hit]:
        """Rule hits ``(rule, end, end)`` (no start: the engine confirms on the line) and, as
        ``(marker_id, WHOLE, line_end)``, lines with an encoding marker."""
        found: list[Hit] = []
        if self.database is not None and data:
            scratch = getattr(self._local, "scratch", None)
            if scratch is None:
                scratch = self._local.scratch = hyperscan.Scratch(self.database)
            append = found.append
            marker = self.marker_id

            def on_match(rule_index: int, start: int, end: int, flags: int, context: object) -> None:
                append((rule_index, WHOLE if rule_index == marker else end, end))

            self.database.scan(data, match_event_handler=on_match, scratch=scratch)
        if self._fallback is not None:
            found.extend(self._fallback.hits(data))
        return found

    # -- building and caching -------------------------------------------------------------------

    def _load_or_build(self, rules: Sequence[Rule], digest: str
                       ) -> tuple[hyperscan.Database | None, dict[int, int], list[int]]:
        # The digest covers every rule's regex and Hyperscan override, the ids their order (a rule's
        # position is its Hyperscan id), PREFILTER_FORMAT how patterns are derived from them: so the key
        # is known without deriving 600 patterns, which only a cache miss needs.
        key = hashlib.sha256(
            # hyperscan's stubs (__init__.pyi) omit the __version__ its __init__.py defines
            json.dumps([digest, hyperscan.__version__,  # type: ignore[attr-defined]
                        PREFILTER_FORMAT, MARKER_LINE.hex(), [rule.id for rule in rules]]).encode()
        ).hexdigest()[:24]
        cached = self._read_cache(key)
        if cached is not None:
            return cached
        patterns = [relax_bounds(rule.hyperscan or rule.pattern.pattern).encode("utf-8") for rule in rules]
        patterns.append(MARKER_LINE)
        compiled = dict.fromkeys(range(len(patterns)), hyperscan.HS_FLAG_MULTILINE)
        fallback: list[int] = []
        database: hyperscan.Database | None
        try:
            database = _compile(patterns, compiled)
        except hyperscan.error:  # find the culprits one by one, only when needed
            compiled, fallback = {}, []
            for index, pattern in enumerate(patterns):
                flags = _flags_that_compile(pattern)
                if flags is None:
                    fallback.append(index)
                else:
                    compiled[index] = flags
            database = _compile(patterns, compiled) if compiled else None
        self._write_cache(key, database, compiled, fallback)
        return database, compiled, fallback

    def _read_cache(self, key: str) -> tuple[hyperscan.Database | None, dict[int, int], list[int]] | None:
        try:
            meta = json.loads((self.cache_dir / f"hs-{key}.json").read_text(encoding="utf-8"))
            compiled = {int(k): int(v) for k, v in meta["compiled"].items()}
            database: hyperscan.Database | None = None
            if compiled:
                blob = (self.cache_dir / f"hs-{key}.db").read_bytes()
                database = hyperscan.loadb(blob, hyperscan.HS_MODE_BLOCK)
            return database, compiled, [int(i) for i in meta["fallback"]]
        except (OSError, ValueError, KeyError, TypeError, hyperscan.error):
            return None

    def _write_cache(self, key: str, database: hyperscan.Database | None, compiled: dict[int, int],
                     fallback: list[int]) -> None:
        """Best effort: a read-only home only costs compile time on the next run."""
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            if database is not None:
                _atomic_write(self.cache_dir / f"hs-{key}.db", hyperscan.dumpb(database))
            meta = {"compiled": {str(k): v for k, v in compiled.items()}, "fallback": fallback}
            _atomic_write(self.cache_dir / f"hs-{key}.json", json.dumps(meta).encode())
            _prune(self.cache_dir, "hs-*.json", KEEP_DATABASES)
        except (OSError, hyperscan.error):
            pass


def _prune(directory: Path, pattern: str, keep: int) -> None:
    """Remove all but the ``keep`` newest cache entries (each rule change compiles a new database of a
    few MB, and nothing else would ever remove the old ones)."""
    entries = sorted(directory.glob(pattern), key=lambda path: path.stat().st_mtime, reverse=True)
    for stale in entries[keep:]:
        for path in (stale, stale.with_suffix(".db")):
            path.unlink(missing_ok=True)


def relax_bounds(pattern: str) -> str:
    """``{m,n}`` with a large ``n`` becomes ``{m,}``: a superset, so still a valid prefilter, and far
    cheaper for Hyperscan to compile and run (the rule's own regex keeps the bound). Named groups
    become plain groups: Hyperscan captures nothing and refuses a name used twice, which a rule with
    one ``secret`` group per alternative needs."""
    relaxed = _BOUNDED.sub(lambda m: m[0] if int(m[2]) <= _MAX_BOUND else f"{{{m[1]},}}", pattern)
    return _NAMED_GROUP.sub("(", relaxed)


def _compile(patterns: Sequence[bytes], flags: dict[int, int]) -> hyperscan.Database:
    ids = sorted(flags)
    database = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    database.compile(expressions=[patterns[i] for i in ids], ids=ids, elements=len(ids),
                     flags=[flags[i] for i in ids])
    return database


def _flags_that_compile(pattern: bytes) -> int | None:
    """As it is if Hyperscan can, else in prefilter mode, else None."""
    base = hyperscan.HS_FLAG_MULTILINE
    for extra in (0, hyperscan.HS_FLAG_PREFILTER):
        trial = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        try:
            trial.compile(expressions=[pattern], ids=[0], elements=1, flags=[base | extra])
        except hyperscan.error:
            continue
        return base | extra
    return None


def _atomic_write(path: Path, data: bytes) -> None:
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
