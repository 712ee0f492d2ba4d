"""Writers for findings: text (rich), json, jsonl, sarif.

Text and JSONL stream as findings arrive; JSON and SARIF are one document written at ``close``.
Rows hold previews and keyed fingerprints only; nothing here ever sees a secret.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Literal, TextIO

from jitsec.scanner.fingerprint import partial_fingerprints
from jitsec.scanner.ruleset import Rule, RuleSet

from jitsec import __version__
from jitsec.kernel.records import Finding, Severity, describe_origin
from jitsec.kernel.redaction import printable

Format = Literal["text", "json", "jsonl", "sarif"]
FORMATS: tuple[str, ...] = ("text", "json", "jsonl", "sarif")
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_SARIF_LEVEL = {Severity.CRITICAL: "error", Severity.HIGH: "error", Severity.MEDIUM: "warning",
                Severity.LOW: "note"}
_STYLE = {Severity.CRITICAL: "bold red", Severity.HIGH: "red", Severity.MEDIUM: "yellow",
          Severity.LOW: "cyan"}


def finding_row(finding: Finding) -> dict[str, Any]:
    """The flat record of a finding used by json, jsonl and baselines."""
    return {
        "rule": finding.rule_id,
        "path": describe_origin(finding.origin),
        "line": finding.line,
        "column": finding.column,
        "offset": finding.offset,
        "preview": finding.preview,
        "fingerprint": finding.fingerprint,
        "severity": finding.severity.value,
        "confidence": finding.confidence.value,
        "description": finding.description,
        "broker": finding.broker.value if finding.broker else None,
        "credential_sha256": finding.credential_sha256,
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
            document = {"version": __version__, "rules_digest": self.ruleset.digest, "summary": summary,
                        "findings": [finding_row(f) for f in self._held]}
            json.dump(document, self.stream, indent=2)
            self.stream.write("\n")
        elif self.fmt == "sarif":
            json.dump(sarif_document(self._held, self.ruleset), self.stream, indent=2)
            self.stream.write("\n")
        self.stream.flush()


def _text_line(finding: Finding) -> str:
    from rich.markup import escape  # noqa: PLC0415 - see FindingWriter

    where = f"{describe_origin(finding.origin)}:{finding.line}:{finding.column}"
    style = _STYLE[finding.severity]
    return (f"{escape(printable(where))}  [{style}]{finding.severity.value}[/]  "
            f"{escape(printable(finding.rule_id))}  {escape(printable(finding.preview))}  "
            f"[dim]{finding.confidence.value} {finding.fingerprint[:24]}[/]")


def sarif_document(findings: Sequence[Finding], ruleset: RuleSet) -> dict[str, Any]:
    """A SARIF 2.1.0 log with one run; rules listed are those with results."""
    used = sorted({f.rule_id for f in findings})
    index = {rule_id: position for position, rule_id in enumerate(used)}
    rules = {rule.id: rule for rule in ruleset.rules}
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "jitsec",
                "version": __version__,
                "semanticVersion": __version__,
                "properties": {"rulesDigest": ruleset.digest},
                "rules": [_sarif_rule(rule_id, rules.get(rule_id)) for rule_id in used],
            }},
            "results": [_sarif_result(f, index[f.rule_id], prints)
                        for f, prints in zip(findings, partial_fingerprints(findings), strict=True)],
        }],
    }


def _sarif_rule(rule_id: str, rule: Rule | None) -> dict[str, Any]:
    description = rule.description if rule else rule_id
    severity = rule.severity if rule else Severity.MEDIUM
    return {
        "id": rule_id,
        "name": rule_id,
        "shortDescription": {"text": description},
        "defaultConfiguration": {"level": _SARIF_LEVEL[severity]},
        "properties": {"tags": ["security", "secret", *(rule.tags if rule else ())]},
    }


def _sarif_result(finding: Finding, rule_index: int, fingerprints: dict[str, str]) -> dict[str, Any]:
    return {
        "ruleId": finding.rule_id,
        "ruleIndex": rule_index,
        "level": _SARIF_LEVEL[finding.severity],
        "message": {"text": f"{finding.description or finding.rule_id}: {finding.preview}"},
        "locations": [{"physicalLocation": {
            "artifactLocation": {"uri": describe_origin(finding.origin)},
            "region": {"startLine": finding.line, "startColumn": finding.column},
        }}],
        "partialFingerprints": fingerprints,
        "properties": {"confidence": finding.confidence.value, "severity": finding.severity.value,
                       "offset": finding.offset},
    }
