"""Building the scanner for ``hook`` and ``watch`` (rule packs, the local fingerprint key, baselines),
and reading non-path source addresses once for ``scan``.

Imported only by commands that are about to scan (the engine pulls in Hyperscan). Errors come out as
``ScannerSetupError`` with a message fit for the terminal.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from jitsec.connectors.address import SourceAddressError, open_source
from jitsec.kernel.records import Chunk, Finding, GitOrigin
from jitsec.pipeline import run_sources
from jitsec.scanner.baseline import Baseline, BaselineError, load_baseline
from jitsec.scanner.engine import Scanner
from jitsec.scanner.fingerprint import Fingerprinter, FingerprintKeyError
from jitsec.scanner.ruleset import RuleError, load_ruleset
from jitsec.scanner.scan_job import ScanResult


class ScannerSetupError(ValueError):
    """Rules, key or baseline could not be loaded."""


def load_baselines(paths: Sequence[Path]) -> Baseline:
    baseline = Baseline()
    for path in paths:
        try:
            baseline = baseline | load_baseline(path)
        except BaselineError as exc:
            raise ScannerSetupError(str(exc)) from exc
    return baseline


def build_scanner(
    rules: Sequence[Path] = (),
    baseline: Baseline | None = None,
    live_fingerprints: Callable[[str], bool] | None = None,
) -> Scanner:
    """The default rule packs plus ``rules``, keyed by the local fingerprint key; secrets whose SHA-1 a
    detect-secrets baseline lists are dropped by the engine while still in hand. ``live_fingerprints``
    is the leak response's live-credential cache, when a broker is configured."""
    try:
        ruleset = load_ruleset(list(rules))
        if not ruleset.rules:
            raise ScannerSetupError("no rules loaded (no default packs found and none given with --rules)")
        fingerprinter = Fingerprinter.load_or_create()
        ignored = baseline.sha1 if baseline is not None else frozenset()
        return Scanner(ruleset, fingerprinter, ignored_sha1=ignored, live_fingerprints=live_fingerprints)
    except (RuleError, FingerprintKeyError, RuntimeError) as exc:
        raise ScannerSetupError(str(exc)) from exc


class FirstSeenInHistory:
    """Reports a secret that stays in a file over many commits once, at the commit that introduced it.

    The history source scans every blob once, but each later version of a file is another blob that
    still holds the secret; without this, one leak would be reported once per version. History is read
    oldest first, so the first finding kept is the introducing commit. Other origins pass through.
    Thread-safe; remembers (rule, fingerprint, path) of kept history findings only.
    """

    def __init__(self) -> None:
        self._seen: set[tuple[str, str, str]] = set()
        self._lock = threading.Lock()
        self.repeats = 0

    def __call__(self, findings: Sequence[Finding]) -> list[Finding]:
        kept = []
        for finding in findings:
            if isinstance(finding.origin, GitOrigin):
                key = (finding.rule_id, finding.fingerprint, finding.origin.path)
                with self._lock:
                    if key in self._seen:
                        self.repeats += 1
                        continue
                    self._seen.add(key)
            kept.append(finding)
        return kept


def scan_addresses(
    addresses: Sequence[str],
    scanner: Scanner,
    baseline: Baseline,
    emit: Callable[[list[Finding]], None],
    result: ScanResult,
) -> None:
    """Read ``git:``/``kafka://``/``elasticsearch://`` sources once, for ``jitsec scan``: findings the
    baseline does not accept go to ``emit``; counts and errors are added to ``result``."""
    try:
        sources = [open_source(address, follow=False) for address in addresses]
    except SourceAddressError as exc:
        result.errors.record("source", str(exc))
        return
    lock = threading.Lock()
    first_seen = FirstSeenInHistory()

    def on_findings(chunk: Chunk, findings: list[Finding]) -> None:
        unaccepted = [finding for finding in findings if not baseline.accepts(finding)]
        fresh = first_seen(unaccepted)
        with lock:
            result.baselined += len(findings) - len(unaccepted)
            result.findings += len(fresh)
            if fresh:
                emit(fresh)

    stats = run_sources(sources, scanner, on_findings)
    result.bytes += stats.bytes
    result.files += sum(getattr(getattr(source, "stats", None), "blobs_scanned", 0) for source in sources)
    for kind, count in stats.errors.counts.items():
        result.errors.counts[kind] = result.errors.counts.get(kind, 0) + count
    room = max(0, result.errors.max_examples - len(result.errors.examples))
    result.errors.examples.extend(stats.errors.examples[:room])
