"""SARIF 2.1.0 for code-scanning products, valid against the OASIS schema for every kind of origin.

Where a finding is, as SARIF wants it:

- a file under the directory the scan ran in: a relative URI (percent-encoded UTF-8, so spaces,
  ``:`` and non-ASCII names stay one valid URI reference) against ``uriBaseId`` ``%SRCROOT%``, which
  ``originalUriBaseIds`` maps to that directory; any other file: an absolute ``file:`` URI;
- a file in a git commit: its path inside the repository against the repository's own base id
  (``%SRCROOT%`` when the scan ran at the repository's top), listed in ``versionControlProvenance``;
  the commit, its author, date and subject are in the result's ``properties.git`` and message;
- a stream: an absolute URI of its own scheme (``stdin:``, ``kafka:TOPIC/PARTITION/OFFSET``,
  ``elasticsearch:INDEX/DOCUMENT``, the field as fragment) and a logical location naming it.

Rules carry ``fullDescription``, ``help`` (what to do: revoke, rotate, clean up, derived from the rule's
own metadata), ``helpUri`` when the rule names where its credentials are revoked, and the
``security-severity`` score GitHub ranks alerts by. Sources that could not be read become
``invocations[0].toolExecutionNotifications`` and make ``executionSuccessful`` false.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jitsec.scanner.fingerprint import partial_fingerprints
from jitsec.scanner.git_fields import git_fields, short_commit
from jitsec.scanner.ruleset import Rule, RuleSet
from jitsec.scanner.validators import BROKER_VALIDATORS

import jitsec
from jitsec.kernel.records import (
    ElasticsearchOrigin,
    FileOrigin,
    Finding,
    GitOrigin,
    KafkaOrigin,
    Origin,
    Related,
    Severity,
    StreamOrigin,
    describe_origin,
)

SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/os/schemas/sarif-schema-2.1.0.json"
SRCROOT = "%SRCROOT%"
LEVEL = {Severity.CRITICAL: "error", Severity.HIGH: "error", Severity.MEDIUM: "warning", Severity.LOW: "note"}
# GitHub ranks code-scanning alerts by this score: over 9.0 critical, 7.0-8.9 high, 4.0-6.9 medium.
SECURITY_SEVERITY = {Severity.CRITICAL: "9.5", Severity.HIGH: "8.0", Severity.MEDIUM: "5.5",
                     Severity.LOW: "3.0"}


def sarif_document(findings: Sequence[Finding], ruleset: RuleSet, summary: Mapping[str, Any] | None = None,
                   *, root: Path | None = None) -> dict[str, Any]:
    """A SARIF 2.1.0 log with one run; rules listed are those with results. ``summary`` is the scan's
    (``ScanResult.summary()``): its read errors become notifications. ``root`` is ``%SRCROOT%``, the
    directory relative file paths are relative to (the working directory by default)."""
    bases = UriBases(Path.cwd() if root is None else root)
    used = sorted({f.rule_id for f in findings})
    index = {rule_id: position for position, rule_id in enumerate(used)}
    rules = {rule.id: rule for rule in ruleset.rules}
    results = [_result(f, index[f.rule_id], bases, prints)
               for f, prints in zip(findings, partial_fingerprints(findings), strict=True)]
    run: dict[str, Any] = {
        "tool": {"driver": {
            "name": "jitsec",
            "version": jitsec.__version__,
            "semanticVersion": jitsec.__version__,
            "properties": {"rulesDigest": ruleset.digest},
            "rules": [_rule(rule_id, rules.get(rule_id)) for rule_id in used],
        }},
        "invocations": [_invocation(summary or {}, bases.root)],
        "originalUriBaseIds": bases.described(),
        "results": results,
    }
    if bases.repositories:
        run["versionControlProvenance"] = [
            {"repositoryUri": _directory_uri(Path(repository)), "mappedTo": {"uriBaseId": base}}
            for repository, base in bases.repositories.items()]
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}


class UriBases:
    """The ``uriBaseId`` of each directory results are relative to: the scan's root (``%SRCROOT%``,
    also the base of a repository scanned from its top), then one per other git repository, in order
    of appearance. ``repositories`` maps every repository seen to its base."""

    def __init__(self, root: Path) -> None:
        self.root = Path(os.path.abspath(root))
        self.repositories: dict[str, str] = {}

    def of_repository(self, repository: str) -> str:
        if not repository:
            return SRCROOT  # a record from before repositories were named: the scan's root is the best guess
        if repository not in self.repositories:
            others = sum(base != SRCROOT for base in self.repositories.values())
            at_root = Path(repository) == self.root
            self.repositories[repository] = SRCROOT if at_root else f"REPOROOT{others + 1}"
        return self.repositories[repository]

    def described(self) -> dict[str, Any]:
        described = {SRCROOT: {"uri": _directory_uri(self.root),
                               "description": {"text": "The directory the scan ran in."}}}
        for repository, base in self.repositories.items():
            if base != SRCROOT:
                described[base] = {"uri": _directory_uri(Path(repository)),
                                   "description": {"text": "The top of a scanned git repository."}}
        return described


def _directory_uri(path: Path) -> str:
    """An absolute ``file:`` URI ending with ``/``, as SARIF requires of base URIs."""
    uri = path.as_uri()
    return uri if uri.endswith("/") else uri + "/"


def _relative_uri(path: str) -> str:
    """A relative reference: each byte outside the unreserved set percent-encoded, ``/`` kept, so
    that no segment reads as a scheme (``git:x``) and undecodable names (surrogate escapes) survive."""
    return quote(path.encode("utf-8", "surrogateescape"), safe="/")


def artifact_location(origin: Origin, bases: UriBases) -> dict[str, Any]:
    """The ``artifactLocation`` of an origin: a relative URI with its ``uriBaseId``, or an absolute URI."""
    match origin:
        case FileOrigin(path=path):
            absolute = Path(os.path.abspath(path))
            if absolute == bases.root or bases.root not in absolute.parents:
                return {"uri": absolute.as_uri()}
            relative = posixpath.join(*absolute.relative_to(bases.root).parts)
            return {"uri": _relative_uri(relative), "uriBaseId": SRCROOT}
        case GitOrigin(path=path, repository=repository):
            return {"uri": _relative_uri(path), "uriBaseId": bases.of_repository(repository)}
        case StreamOrigin(name=name):
            return {"uri": "stdin:" if name == "-" else "stream:" + quote(name, safe="")}
        case KafkaOrigin(topic=topic, partition=partition, offset=offset, field=field):
            return {"uri": f"kafka:{quote(topic, safe='')}/{partition}/{offset}{_fragment(field)}"}
        case ElasticsearchOrigin(index=index, doc_id=doc_id, field=field):
            document = f"{quote(index, safe='')}/{quote(doc_id, safe='')}"
            return {"uri": f"elasticsearch:{document}{_fragment(field)}"}
    raise TypeError(f"unknown origin type {type(origin).__name__}")


def _fragment(field: str | None) -> str:
    return "" if field is None else "#" + quote(field, safe="")


def _result(
    finding: Finding, rule_index: int, bases: UriBases, fingerprints: dict[str, str]
) -> dict[str, Any]:
    region = {"startLine": finding.line, "startColumn": finding.column}
    if finding.end_line:  # SARIF's end column is the one after the region
        region.update(endLine=finding.end_line, endColumn=finding.end_column + 1)
    location: dict[str, Any] = {"physicalLocation": {
        "artifactLocation": artifact_location(finding.origin, bases), "region": region}}
    if isinstance(finding.origin, StreamOrigin | KafkaOrigin | ElasticsearchOrigin):
        location["logicalLocations"] = [{"fullyQualifiedName": describe_origin(finding.origin),
                                         "kind": "resource"}]
    properties: dict[str, Any] = {"confidence": finding.confidence.value, "severity": finding.severity.value,
                                  "offset": finding.offset}
    message = f"{finding.description or finding.rule_id}: {finding.preview}"
    git = git_fields(finding.origin)
    if git is not None:
        properties["git"] = git
        message += f" (commit {short_commit(git)})"
    result = {
        "ruleId": finding.rule_id,
        "ruleIndex": rule_index,
        "level": LEVEL[finding.severity],
        "message": {"text": message},
        "locations": [location],
        "partialFingerprints": fingerprints,  # no secret material: stable across runs and machines
        "properties": properties,
    }
    if finding.related:
        result["relatedLocations"] = [_related_location(finding, number, related, bases)
                                      for number, related in enumerate(finding.related, 1)]
    return result


def _related_location(finding: Finding, number: int, related: Related, bases: UriBases) -> dict[str, Any]:
    """The other half of a paired secret, in the finding's own artifact (a redacted preview only)."""
    return {
        "id": number,
        "physicalLocation": {"artifactLocation": artifact_location(finding.origin, bases),
                             "region": {"startLine": related.line, "startColumn": related.column}},
        "message": {"text": f"paired {related.rule_id}: {related.preview}"},
    }


def _rule(rule_id: str, rule: Rule | None) -> dict[str, Any]:
    description = rule.description if rule and rule.description else rule_id
    severity = rule.severity if rule else Severity.MEDIUM
    tags = ("security", "secret", *(rule.tags if rule else ()))
    text, markdown = remediation(rule_id, rule)
    out: dict[str, Any] = {
        "id": rule_id,
        "name": rule_id,
        "shortDescription": {"text": description},
        "fullDescription": {"text": f"{description}, found by jitsec rule {rule_id!r}"
                                    f"{f' of pack {rule.pack!r}' if rule else ''}."},
        "help": {"text": text, "markdown": markdown},
        "defaultConfiguration": {"level": LEVEL[severity]},
        "properties": {
            "tags": list(dict.fromkeys(tags)),
            "security-severity": SECURITY_SEVERITY[severity],
            "precision": "very-high" if rule and rule.validator else "high",
        },
    }
    if rule and rule.revoke:
        out["helpUri"] = rule.revoke
    return out


def remediation(rule_id: str, rule: Rule | None) -> tuple[str, str]:
    """What to do about a finding of this rule, as plain text and Markdown: from the rule's
    description, its ``revoke`` address and whether the broker issued the credential."""
    what = rule.description if rule and rule.description else f"secret matched by {rule_id}"
    if rule is not None and rule.validator in BROKER_VALIDATORS:
        first = ("This is a jitsec broker credential. A scan run with --broker revokes its lease at once; "
                 "otherwise revoke the lease with the broker that issued it.")
    elif rule is not None and rule.revoke:
        first = f"Revoke or rotate this {what} where it was issued: {rule.revoke}"
    else:
        first = f"Revoke or rotate this {what} with the service that issued it."
    steps = [
        first,
        "Treat it as compromised: anyone who could read this location could use it until then.",
        "Replace it in the code or configuration with a reference to a secret store or an environment "
        "variable, and check the service's access logs for use since it leaked.",
        "If it was committed, it stays in the git history: rewriting history does not un-leak it, "
        "revoking does.",
    ]
    text = " ".join(steps)
    markdown = "\n".join(f"{number}. {step}" for number, step in enumerate(steps, 1))
    return text, markdown


def _invocation(summary: Mapping[str, Any], root: Path) -> dict[str, Any]:
    """The run's one invocation: what could not be scanned (an unreadable file, a git object that is
    missing, a bad record) as notifications, one per example the summary kept, plus one counting the
    rest by kind."""
    counts = {str(kind): int(count) for kind, count in (summary.get("errors") or {}).items()}
    examples = [str(example) for example in summary.get("error_examples") or []]
    notifications = []
    for example in examples:
        kind, _, detail = example.partition(": ")
        notifications.append({"level": "error", "message": {"text": detail or kind},
                              "descriptor": {"id": kind if detail else "error"}})
    total = sum(counts.values())
    if total > len(examples):
        kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(counts.items()))
        more = "more " if examples else ""
        notifications.append({"level": "error", "descriptor": {"id": "error-count"},
                              "message": {"text": f"{total - len(examples)} {more}inputs or records could "
                                                  f"not be scanned ({kinds})"}})
    return {"executionSuccessful": total == 0, "toolExecutionNotifications": notifications,
            "workingDirectory": {"uri": _directory_uri(root)}}
