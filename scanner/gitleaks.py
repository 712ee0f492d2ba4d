"""Translate a user's gitleaks TOML configuration into rules and allowlists at run time.

Read: ``[[rules]]`` with ``id``, ``description``, ``regex``, ``secretGroup``, ``keywords``,
``entropy``, ``tags`` and ``allowlist`` / ``[[rules.allowlists]]`` (``regexes``, ``stopwords``);
the global ``[allowlist]`` / ``[[allowlists]]`` (``paths``, ``regexes`` with ``regexTarget`` secret,
match or line, ``stopwords``, ``commits``); ``[extend] useDefault = true`` (jitsec's default packs
are loaded, even with ``--no-default-rules``). Anything else is reported in ``warnings`` (the
command prints each, naming the key) and left out: path-only rules, a rule's ``path``, allowlists
with ``condition = "AND"`` or ``targetRules``, ``[extend] path``/``disabledRules`` and so on.
Leaving out an allowlist can only report more, never less. Nothing of gitleaks is shipped: the user
brings the file.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import regex
from jitsec.scanner.allowlist import ContentAllowlist, PatternError, compile_regexes
from jitsec.scanner.rules_model import Allowlist, Rule, RuleError

from jitsec.kernel.records import Severity

_PACK = "gitleaks"
_TOP_KEYS = {"title", "description", "minVersion", "rules", "allowlist", "allowlists", "extend"}
_RULE_KEYS = {"id", "description", "regex", "secretGroup", "keywords", "entropy", "tags", "allowlist",
              "allowlists"}
_ALLOWLIST_KEYS = {"description", "paths", "regexes", "regexTarget", "stopwords", "commits", "condition"}
_TARGETS = {"secret": "secrets", "match": "matches", "line": "lines"}


@dataclass(frozen=True, slots=True)
class GitleaksConfig:
    """What jitsec takes from a gitleaks config, and what it left out (``warnings``)."""

    rules: tuple[Rule, ...]
    content: ContentAllowlist  # the global allowlists' regexes and stopwords
    paths: tuple[regex.Pattern[str], ...]  # the global allowlists' path regexes
    commits: frozenset[str]  # lowercase commit ids (or prefixes) whose findings are dropped
    use_default: bool
    warnings: tuple[str, ...]


def load_gitleaks_config(path: Path) -> list[Rule]:
    return list(read_gitleaks_config(path).rules)


def read_gitleaks_config(path: Path) -> GitleaksConfig:
    label = f"{_PACK}:{path}"
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise RuleError(label, None, None, f"cannot read: {error.strerror or error}") from error
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise RuleError(label, None, None, f"not valid TOML: {error}") from error
    warnings = [f"{path}: {key}: not supported by jitsec, ignored" for key in sorted(set(raw) - _TOP_KEYS)]
    use_default = _extend(raw.get("extend"), label, path, warnings)
    entries = raw.get("rules", [])
    if not isinstance(entries, list):
        raise RuleError(label, None, "rules", "must be an array of tables")
    rules = [rule for index, entry in enumerate(entries)
             if (rule := translate_rule(entry, label, index, warnings))]
    content, paths, commits = _global_allowlists(raw, label, path, warnings)
    if not rules and not use_default and not (content or paths or commits):
        raise RuleError(label, None, "rules", "no content rule to load (rules need a `regex`)")
    return GitleaksConfig(tuple(rules), content, paths, commits, use_default, tuple(warnings))


def _extend(extend: Any, label: str, path: Path, warnings: list[str]) -> bool:
    if extend is None:
        return False
    if not isinstance(extend, dict):
        raise RuleError(label, None, "extend", "must be a table")
    use_default = extend.get("useDefault", False)
    if not isinstance(use_default, bool):
        raise RuleError(label, None, "extend.useDefault", "must be true or false")
    warnings.extend(f"{path}: extend.{key}: not supported by jitsec, ignored"
                    for key in sorted(set(extend) - {"useDefault"}))
    return use_default


def _global_allowlists(raw: dict[str, Any], label: str, path: Path, warnings: list[str],
                       ) -> tuple[ContentAllowlist, tuple[regex.Pattern[str], ...], frozenset[str]]:
    tables: list[tuple[str, Any]] = []
    if "allowlist" in raw:
        tables.append(("allowlist", raw["allowlist"]))
    listed = raw.get("allowlists", [])
    if not isinstance(listed, list):
        raise RuleError(label, None, "allowlists", "must be an array of tables")
    tables.extend((f"allowlists[{index}]", table) for index, table in enumerate(listed))
    content = ContentAllowlist()
    paths: list[regex.Pattern[str]] = []
    commits: set[str] = set()
    for where, table in tables:
        if not isinstance(table, dict):
            raise RuleError(label, None, where, "must be a table")
        skipped = _unsupported_allowlist(table)
        if skipped:
            warnings.append(f"{path}: {where}.{skipped}: not supported by jitsec, this allowlist is ignored")
            continue
        warnings.extend(f"{path}: {where}.{key}: not supported by jitsec, ignored"
                        for key in sorted(set(table) - _ALLOWLIST_KEYS))
        target = table.get("regexTarget", "secret")
        if target not in _TARGETS:
            raise RuleError(label, None, f"{where}.regexTarget", "must be secret, match or line")
        try:
            regexes = compile_regexes(_list(table, "regexes", label, where), f"{where}.regexes")
            paths.extend(compile_regexes(_list(table, "paths", label, where), f"{where}.paths"))
        except PatternError as error:
            raise RuleError(label, None, error.where, error.problem) from None
        stopwords = tuple(str(word).lower() for word in _list(table, "stopwords", label, where))
        content = content | ContentAllowlist(**{_TARGETS[target]: regexes}, stopwords=stopwords)
        commits.update(str(commit).lower() for commit in _list(table, "commits", label, where) if commit)
    return content, tuple(paths), frozenset(commits)


def _unsupported_allowlist(table: dict[str, Any]) -> str | None:
    """A key that changes what the whole allowlist means, so that applying the rest would hide more."""
    if str(table.get("condition", "OR")).upper() != "OR":
        return "condition"
    if "targetRules" in table:
        return "targetRules"
    return None


def _list(table: dict[str, Any], key: str, label: str, where: str) -> list[Any]:
    value = table.get(key, [])
    if not isinstance(value, list):
        raise RuleError(label, None, f"{where}.{key}", "must be an array")
    return value


def translate_rule(entry: Any, label: str, index: int, warnings: list[str] | None = None) -> Rule | None:
    """One gitleaks rule as a jitsec rule, or None for a path-only rule; what is left out of it goes
    to ``warnings``."""
    warnings = warnings if warnings is not None else []
    if not isinstance(entry, dict):
        raise RuleError(label, f"#{index + 1}", None, "a [[rules]] entry must be a table")
    rule_id = entry.get("id")
    if not isinstance(rule_id, str) or not rule_id:
        raise RuleError(label, f"#{index + 1}", "id", "must be a non-empty string")
    source = entry.get("regex")
    if source is None:
        warnings.append(f"{label}: rule {rule_id!r}: path-only rules are not supported by jitsec, skipped")
        return None
    for key in sorted(set(entry) - _RULE_KEYS):
        what = "the rule applies to every path" if key == "path" else "ignored"
        warnings.append(f"{label}: rule {rule_id!r}: {key}: not supported by jitsec, {what}")
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
        allowlist=_allowlist(entry, label, rule_id, warnings),
    )


def _allowlist(entry: dict[str, Any], label: str, rule_id: str, warnings: list[str]) -> Allowlist:
    tables = []
    if isinstance(entry.get("allowlist"), dict):
        tables.append(entry["allowlist"])
    if isinstance(entry.get("allowlists"), list):
        tables.extend(t for t in entry["allowlists"] if isinstance(t, dict))
    regexes: list[regex.Pattern[str]] = []
    stopwords: list[str] = []
    for table in tables:
        unsupported = sorted(key for key in table if key in ("paths", "commits", "targetRules")
                             or (key == "condition" and str(table[key]).upper() != "OR")
                             or (key == "regexTarget" and table[key] != "secret"))
        if unsupported:  # applying the rest would allow more than gitleaks does
            warnings.append(f"{label}: rule {rule_id!r}: allowlist.{unsupported[0]}: not supported by "
                            "jitsec, this allowlist is ignored")
            continue
        for source in table.get("regexes", []):
            try:
                regexes.append(regex.compile(source))
            except (regex.error, TypeError) as error:
                raise RuleError(label, rule_id, "allowlist.regexes", f"does not compile: {error}") from None
        stopwords.extend(str(word).lower() for word in table.get("stopwords", []))
    return Allowlist(regexes=tuple(regexes), stopwords=tuple(stopwords))
