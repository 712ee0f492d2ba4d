"""Run a rule's own examples in every syntactic context (shared by `jitsec rules check` and the
generic rule test). An example must be found, exactly that secret, by its rule in every context;
a counterexample must produce no finding of its rule in any context.

Contexts: ``raw`` (the text, or ``key=secret``), ``json`` (a JSON log line with proper escaping),
``kv`` (``key=secret``), ``yaml`` (``key: secret``), ``env`` (``export KEY=secret``), ``url`` (a query
parameter, URL-encoded), ``header`` (``X-Key: secret``, plus ``Authorization: Bearer secret`` for
token-like secrets).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import quote

import regex
from jitsec.scanner.engine import Scanner
from jitsec.scanner.ruleset import Rule, RuleExample

from jitsec.kernel.lazy_regex import LazyPattern
from jitsec.kernel.records import StreamOrigin
from jitsec.kernel.redaction import preview

_TOKEN_LIKE = LazyPattern(r"[A-Za-z0-9._~+/=-]+")


@dataclass(frozen=True, slots=True)
class ExampleFailure:
    """One example that did not behave. ``message`` shows the secret only as a redacted preview."""

    rule_id: str
    kind: str  # "example" or "counterexample"
    index: int
    context: str
    message: str

    def __str__(self) -> str:
        return f"{self.rule_id} {self.kind}[{self.index}] in {self.context}: {self.message}"


def contexts_for(example: RuleExample) -> list[tuple[str, str]]:
    """(context name, text) pairs the example is wrapped in, restricted to ``example.contexts``."""
    value = example.text if example.text is not None else example.secret or ""
    key = example.key
    header_name = "X-" + "-".join(part.capitalize() for part in regex.split(r"[_.-]", key) if part)
    wrapped = {
        "raw": [value if example.text is not None else f"{key}={value}"],
        "json": [json.dumps({"level": "info", key: value}, separators=(",", ":"))],
        "kv": [f"{key}={value}"],
        "yaml": [f"{key}: {value}"],
        "env": [f"export {key.upper().replace('-', '_').replace('.', '_')}={value}"],
        "url": [f"https://api.example.test/v1?{quote(key)}={quote(value, safe='')}"],
        "header": [f"{header_name}: {value}"],
    }
    if example.text is None and _TOKEN_LIKE.fullmatch(value):
        wrapped["header"].append(f"Authorization: Bearer {value}")
    return [(name, text) for name in example.contexts for text in wrapped[name]]


def check_rule_examples(scanner: Scanner, rule: Rule) -> list[ExampleFailure]:
    """Every way ``rule``'s examples and counterexamples misbehave under ``scanner`` (empty: all good)."""
    failures: list[ExampleFailure] = []
    fingerprint = scanner.fingerprinter.fingerprint
    for index, example in enumerate(rule.examples):
        if not _has_keyword(rule, example):
            failures.append(ExampleFailure(rule.id, "example", index, "-",
                                           "no keyword of the rule occurs in the example"))
        expected = fingerprint(example.secret or "")
        for context, text in contexts_for(example):
            found = [f for f in scanner.scan_bytes(text.encode("utf-8"), StreamOrigin(context))
                     if f.rule_id == rule.id]
            if not found:
                failures.append(ExampleFailure(rule.id, "example", index, context,
                                               f"not found ({preview(example.secret or '')})"))
            elif not any(f.fingerprint == expected for f in found):
                got = ", ".join(f.preview for f in found)
                failures.append(ExampleFailure(rule.id, "example", index, context,
                                               f"found {got}, expected {preview(example.secret or '')}"))
    for index, example in enumerate(rule.counterexamples):
        for context, text in contexts_for(example):
            found = [f for f in scanner.scan_bytes(text.encode("utf-8"), StreamOrigin(context))
                     if f.rule_id == rule.id]
            if found:
                failures.append(ExampleFailure(rule.id, "counterexample", index, context,
                                               f"unexpectedly found {found[0].preview}"))
    return failures


def _has_keyword(rule: Rule, example: RuleExample) -> bool:
    if not rule.keywords:
        return True
    raw = example.text if example.text is not None else f"{example.key}={example.secret}"
    lowered = raw.lower()
    return any(keyword in lowered for keyword in rule.keywords)
