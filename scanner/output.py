"""Writers for findings: text (rich), json, jsonl, sarif, gitleaks-json.

Text and JSONL stream as findings arrive; JSON, SARIF (``scanner.sarif``) and gitleaks' report
(``scanner.gitleaks_report``) are one document written at ``close``. Rows hold previews and keyed
fingerprints only; nothing here ever sees a secret. Findings from git history carry their commit,
author, date and subject in every format.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Literal, TextIO

from jitsec.scanner.git_fields import commit_author, git_fields
from jitsec.scanner.gitleaks_report import gitleaks_row
from jitsec.scanner.ruleset import RuleSet
from jitsec.scanner.sarif import SARIF_SCHEMA, sarif_document

import jitsec
from jitsec.kernel.credential_format import live_lookup
from jitsec.kernel.records import Finding, Severity, describe_origin
from jitsec.kernel.redaction import printable

__all__ = ["FORMATS", "SARIF_SCHEMA", "FindingWriter", "Format", "finding_row", "sarif_document"]

Format = Literal["text", "json", "jsonl", "sarif", "gitleaks-json"]
FORMATS: tuple[str, ...] = ("text", "json", "jsonl", "sarif", "gitleaks-json")
_STYLE = {Severity.CRITICAL: "bold red", Severity.HIGH: "red", Severity.MEDIUM: "yellow",
          Severity.LOW: "cyan"}


def finding_row(finding: Finding) -> dict[str, Any]:
    """The flat record of a finding used by json, jsonl and baselines. ``git`` is the commit of a
    finding from git history (``git_fields``), null otherwise."""
    return {
        "rule": finding.rule_id,
        "path": describe_origin(finding.origin),
        "line": finding.line,
        "column": finding.column,
        "end_line": finding.end_line,
        "end_column": finding.end_column,
        "offset": finding.offset,
        "preview": finding.preview,
        "fingerprint": finding.fingerprint,
        "severity": finding.severity.value,
        "confidence": finding.confidence.value,
        "description": finding.description,
        "broker": finding.broker.value if finding.broker else None,
        # a broker credential's lookup (what GET /v1/fingerprints publishes), never its SHA-256: that
        # is the proof a leak report carries, and reports end up where scanner keys are
        "credential_lookup": live_lookup(finding.credential_sha256) if finding.credential_sha256 else None,
        "git": git_fields(finding.origin),
        # the other half of a paired secret (an AWS key id beside this secret key), in the same origin
        "related": [{"rule": r.rule_id, "line": r.line, "column": r.column, "offset": r.offset,
                     "preview": r.preview, "fingerprint": r.fingerprint} for r in finding.related],
    }


class FindingWriter:
    """Write findings in one format to ``stream``. Not thread-safe: call from one thread."""

    def __init__(self, fmt: Format, stream: TextIO, ruleset: RuleSet, *, color: bool = False) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
        self.fmt, self.stream, self.ruleset = fmt, stream, ruleset
        self._held: list[Finding] = []
        self._console = None
        if fmt == "text":  # rich costs ~30 ms to import: a git hook or a JSON run never pays it
            from rich.console import Console  # noqa: PLC0415

            self._console = Console(file=stream, force_terminal=color, no_color=not color, highlight=False,
                                    emoji=False, soft_wrap=True)

    def write(self, findings: Sequence[Finding]) -> None:
        for finding in findings:
            if self.fmt == "jsonl":
                self.stream.write(json.dumps(finding_row(finding), separators=(",", ":")) + "\n")
            elif self._console is not None:
                self._console.print(_text_line(finding))
            else:
                self._held.append(finding)

    def close(self, summary: dict[str, Any]) -> None:
        if self.fmt == "json":
            document = {"version": jitsec.__version__, "rules_digest": self.ruleset.digest,
                        "summary": summary, "findings": [finding_row(f) for f in self._held]}
            json.dump(document, self.stream, indent=2)
            self.stream.write("\n")
        elif self.fmt == "sarif":
            json.dump(sarif_document(self._held, self.ruleset, summary), self.stream, indent=2)
            self.stream.write("\n")
        elif self.fmt == "gitleaks-json":
            rules = {rule.id: rule for rule in self.ruleset.rules}
            rows = [gitleaks_row(f, rules.get(f.rule_id)) for f in self._held]
            json.dump(rows, self.stream, indent=2)
            self.stream.write("\n")
        self.stream.flush()


def _text_line(finding: Finding) -> str:
    from rich.markup import escape  # noqa: PLC0415 - see FindingWriter

    where = f"{describe_origin(finding.origin)}:{finding.line}:{finding.column}"
    style = _STYLE[finding.severity]
    git = git_fields(finding.origin)
    commit = f"  [dim]{escape(printable(commit_author(git)))}[/]" if git and commit_author(git) else ""
    return (f"{escape(printable(where))}  [{style}]{finding.severity.value}[/]  "
            f"{escape(printable(finding.rule_id))}  {escape(printable(finding.preview))}  "
            f"[dim]{finding.confidence.value} {finding.fingerprint[:24]}[/]{commit}{_pairs_text(finding)}")


def _pairs_text(finding: Finding) -> str:
    """``  with aws-access-key-id AKIA…(20 chars) at line 3`` per paired half: one line per credential."""
    from rich.markup import escape  # noqa: PLC0415 - see FindingWriter

    return "".join(f"  [dim]with {escape(printable(r.rule_id))} {escape(printable(r.preview))} "
                   f"at line {r.line}[/]" for r in finding.related)

