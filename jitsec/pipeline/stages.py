"""The stages that follow detection, each one ``Stage`` (``jitsec.kernel.ports``): take a chunk and
its findings, return the findings to hand on; ``close`` once at the end.

The builder chains them in this order, each optional:

    baseline → first seen in history → leak response → the command's own (tally, metrics, writer)

Stages are shared by every source thread of a run, so each guards its own state.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from jitsec.kernel.records import Chunk, Finding, GitOrigin
from jitsec.scanner.baseline import Baseline


class BaselineStage:
    """Drops findings the baselines accept, counting them (``accepted``). A broker-format or live
    credential (one with a ``credential_sha256``) is never dropped: the broker hears of it always."""

    def __init__(self, baseline: Baseline) -> None:
        self.baseline = baseline
        self.accepted = 0
        self._lock = threading.Lock()

    def process(self, chunk: Chunk, findings: list[Finding]) -> list[Finding]:
        if not findings:
            return findings
        kept = [finding for finding in findings
                if finding.credential_sha256 is not None or not self.baseline.accepts(finding)]
        if len(kept) != len(findings):
            with self._lock:
                self.accepted += len(findings) - len(kept)
        return kept

    def close(self) -> None:
        """Nothing held."""


class FirstSeenInHistory:
    """Reports a secret that stays in a file over many commits once, at the commit that introduced it.

    The history source scans every blob once, but each later version of a file is another blob that
    still holds the secret; without this, one leak would be reported once per version. History is read
    oldest first, so the first finding kept is the introducing commit. Other origins pass through.
    Remembers (rule, fingerprint, path) of kept history findings only.
    """

    def __init__(self) -> None:
        self._seen: set[tuple[str, str, str]] = set()
        self._lock = threading.Lock()
        self.repeats = 0

    def process(self, chunk: Chunk, findings: list[Finding]) -> list[Finding]:
        if not findings:
            return findings
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

    def close(self) -> None:
        """Nothing held."""


class Callback:
    """Hands every chunk's findings to a function and passes them on unchanged: the end of a chain
    (a writer, a collector, a progress bar). Calls are serialised, so the function needs no lock."""

    def __init__(self, function: Callable[[Chunk, list[Finding]], object],
                 on_close: Callable[[], object] | None = None) -> None:
        self.function = function
        self.on_close = on_close
        self._lock = threading.Lock()

    def process(self, chunk: Chunk, findings: list[Finding]) -> list[Finding]:
        with self._lock:
            self.function(chunk, findings)
        return findings

    def close(self) -> None:
        if self.on_close is not None:
            self.on_close()


def emitting(emit: Callable[[list[Finding]], object]) -> Callback:
    """A ``Callback`` that passes on only non-empty finding lists (what writers want)."""
    return Callback(lambda _chunk, findings: emit(findings) if findings else None)
