"""``--format gitleaks-json``: gitleaks' JSON report, field for field, for tools that read it.

One JSON array of objects with gitleaks' report field names. Two differences, on purpose:

- ``Secret`` and ``Match`` hold the redacted preview, never the plaintext (gitleaks writes the secret
  and its line unless run with ``--redact``);
- ``StartColumn`` is where the secret starts, ``EndLine``/``EndColumn`` where the rule's whole match
  ends (a closing quote may follow the secret); columns count bytes.

``Fingerprint`` is gitleaks' own form (``commit:file:rule:line`` for history, ``file:rule:line``
otherwise), the key ``.gitleaksignore`` files use; ``Date`` is RFC 3339 in UTC as gitleaks writes it;
``Message`` is the commit's subject.
"""

from __future__ import annotations

from typing import Any

from jitsec.scanner.git_fields import git_fields, utc_timestamp
from jitsec.scanner.ruleset import Rule

from jitsec.kernel.records import Finding, describe_origin

FIELDS = ("Description", "StartLine", "EndLine", "StartColumn", "EndColumn", "Match", "Secret", "File",
          "SymlinkFile", "Commit", "Entropy", "Author", "Email", "Date", "Message", "Tags", "RuleID",
          "Fingerprint")


def gitleaks_row(finding: Finding, rule: Rule | None) -> dict[str, Any]:
    """One finding as one gitleaks report entry (keys in ``FIELDS`` order)."""
    git = git_fields(finding.origin)
    path = git["path"] if git else describe_origin(finding.origin)
    commit = git["commit"] if git else ""
    fingerprint = f"{path}:{finding.rule_id}:{finding.line}"
    return {
        "Description": finding.description or (rule.description if rule else finding.rule_id),
        "StartLine": finding.line,
        "EndLine": finding.end_line or finding.line,
        "StartColumn": finding.column,
        "EndColumn": finding.end_column or finding.column,
        "Match": finding.preview,
        "Secret": finding.preview,
        "File": path,
        "SymlinkFile": "",
        "Commit": commit,
        "Entropy": finding.entropy,
        "Author": git["author_name"] if git else "",
        "Email": git["author_email"] if git else "",
        "Date": utc_timestamp(git["author_date"]) if git else "",
        "Message": git["subject"] if git else "",
        "Tags": list(rule.tags) if rule else [],
        "RuleID": finding.rule_id,
        "Fingerprint": f"{commit}:{fingerprint}" if commit else fingerprint,
    }
