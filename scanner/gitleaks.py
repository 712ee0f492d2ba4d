"""Translate a user's gitleaks TOML configuration into rules at run time.

Only the fields that carry meaning for us are read: ``[[rules]]`` with ``id``, ``description``,
``regex``, ``secretGroup``, ``keywords``, ``entropy`` and ``allowlist`` / ``[[rules.allowlists]]``
(``regexes``, ``stopwords``). Path-only rules and path allowlists do not apply to streams and are
skipped. Nothing of gitleaks is shipped: the user brings the file.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import regex
from jitsec.scanner.rules_model import Allowlist, Rule, RuleError

from jitsec.kernel.records import Severity

_PACK = "gitleaks"


def load_gitleaks_config(path: Path) -> list[Rule]:
    label = f"{_PACK}:{path}"
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise RuleError(label, None, None, f"cannot read: {error.strerror or error}") from error
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise RuleError(label, None, None, f"not valid TOML: {error}") from error
    entries = raw.get("rules", [])
    if not isinstance(entries, list):
        raise RuleError(label, None, "rules", "must be an array of tables")
    rules = [rule for index, entry in enumerate(entries) if (rule := translate_rule(entry, label, index))]
    if not rules:
        raise RuleError(label, None, "rules", "no content rule to load (rules need a `regex`)")
    return rules


def translate_rule(entry: Any, label: str, index: int) -> Rule | None:
    """One gitleaks rule as a jitsec rule, or None for a path-only rule."""
    if not isinstance(entry, dict):
        raise RuleError(label, f"#{index + 1}", None, "a [[rules]] entry must be a table")
    rule_id = entry.get("id")
    if not isinstance(rule_id, str) or not rule_id:
        raise RuleError(label, f"#{index + 1}", "id", "must be a non-empty string")
    source = entry.get("regex")
    if source is None:
        return None
    try:
        pattern = regex.compile(source, regex.ASCII | regex.MULTILINE)
    except (regex.error, TypeError) as error:
        raise RuleError(label, rule_id, "regex", f"does not compile: {error}") from None
    group = entry.get("secretGroup", 0)
    if not isinstance(group, int) or group < 0 or group > pattern.groups:
        raise RuleError(label, rule_id, "secretGroup", f"must be a group number from 0 to {pattern.groups}")
    if group == 0 and pattern.groups == 1:
        group = 1  # gitleaks reports the only group when none is named
    keywords = entry.get("keywords", [])
    if not isinstance(keywords, list) or not all(isinstance(k, str) and k for k in keywords):
        raise RuleError(label, rule_id, "keywords", "must be a list of non-empty strings")
    entropy = entry.get("entropy")
    if entropy is not None and not isinstance(entropy, int | float):
        raise RuleError(label, rule_id, "entropy", "must be a number")
    return Rule(
        id=f"gitleaks-{rule_id}",
        pack=label,
        description=str(entry.get("description", rule_id)),
        pattern=pattern,
        keywords=tuple(k.lower() for k in keywords),
        severity=Severity.HIGH,
        tags=tuple(str(t) for t in entry.get("tags", []) if isinstance(t, str)),
        entropy=float(entropy) if entropy is not None else None,
        secret_group=group,
        allowlist=_allowlist(entry, label, rule_id),
    )


def _allowlist(entry: dict[str, Any], label: str, rule_id: str) -> Allowlist:
    tables = []
    if isinstance(entry.get("allowlist"), dict):
        tables.append(entry["allowlist"])
    if isinstance(entry.get("allowlists"), list):
        tables.extend(t for t in entry["allowlists"] if isinstance(t, dict))
    regexes: list[regex.Pattern[str]] = []
    stopwords: list[str] = []
    for table in tables:
        if table.get("regexTarget") in ("match", "line"):
            continue  # only secret-targeted regexes translate exactly
        for source in table.get("regexes", []):
            try:
                regexes.append(regex.compile(source))
            except (regex.error, TypeError) as error:
                raise RuleError(label, rule_id, "allowlist.regexes", f"does not compile: {error}") from None
        stopwords.extend(str(word).lower() for word in table.get("stopwords", []))
    return Allowlist(regexes=tuple(regexes), stopwords=tuple(stopwords))
