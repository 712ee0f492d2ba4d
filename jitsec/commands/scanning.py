"""Building the scanner for ``hook`` and ``watch``: rule packs, the local fingerprint key, baselines.

Imported only by commands that are about to scan (the engine pulls in Hyperscan). Errors come out as
``ScannerSetupError`` with a message fit for the terminal.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from scanner.baseline import Baseline, BaselineError, load_baseline
from scanner.engine import Scanner
from scanner.fingerprint import Fingerprinter, FingerprintKeyError
from scanner.ruleset import RuleError, load_ruleset


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
