"""``.jitsec.toml``: a project's own settings for scanning it, kept in the repository.

Found from the scanned path upward, up to the repository root (a folder holding ``.git``) or the
filesystem root; ``--project-config FILE`` names one, ``--no-project-config`` ignores it. Example::

    min_severity = "medium"            # findings below are dropped (low, medium, high, critical)

    [rules]
    disable = ["generic-password"]     # rule ids (`jitsec rules list`)
    packs = ["ci/extra-rules.toml"]    # extra rule packs, relative to this file

    [allowlist]
    paths = ["tests/fixtures/**", "*.snap"]     # globs, from this file's folder
    secrets = ["^AKIAIOSFODNN7EXAMPLE$"]        # regexes searched in the secret itself
    lines = ["example\\.com/fake"]              # regexes searched in the whole line
    stopwords = ["dummy"]                       # words contained in the secret (any case)

Every error names the file and the key; unknown keys and bad values are errors (a typo must not
silently stop ignoring, nor silently start). Nothing here ever hides a broker-format or live broker
credential.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jitsec.scanner.allowlist import ContentAllowlist, GlobError, PathRules, PatternError, compile_regexes

from jitsec.kernel.records import Severity

PROJECT_FILE = ".jitsec.toml"
_TOP_KEYS = {"min_severity", "rules", "allowlist"}
_RULES_KEYS = {"disable", "packs"}
_ALLOWLIST_KEYS = {"paths", "secrets", "lines", "stopwords"}
SEVERITY_ORDER = {severity: rank for rank, severity in enumerate(Severity)}


class ProjectConfigError(ValueError):
    """A ``.jitsec.toml`` that cannot be used, naming the file and the key at fault."""


@dataclass(frozen=True, slots=True)
class ProjectConfig:
    """What one ``.jitsec.toml`` says; ``base`` is its folder (paths are taken from there)."""

    path: Path
    base: Path
    paths: PathRules = field(default_factory=PathRules)
    content: ContentAllowlist = field(default_factory=ContentAllowlist)
    disabled_rules: frozenset[str] = frozenset()
    packs: tuple[Path, ...] = ()
    min_severity: Severity | None = None


def find_project_config(start: Path) -> Path | None:
    """The nearest ``.jitsec.toml`` at or above ``start`` (a file's folder), stopping at the first
    folder that holds ``.git`` (the repository root) or at the filesystem root."""
    folder = start.resolve()
    if not folder.is_dir():
        folder = folder.parent
    for candidate in (folder, *folder.parents):
        config = candidate / PROJECT_FILE
        if config.is_file():
            return config
        if (candidate / ".git").exists():
            return None
    return None


def load_project_config(path: Path) -> ProjectConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        raise ProjectConfigError(f"{path}: cannot read ({reason})") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ProjectConfigError(f"{path}: not valid TOML ({error})") from None
    return parse_project_config(raw, path)


def parse_project_config(raw: dict[str, Any], path: Path) -> ProjectConfig:
    """Validate a parsed document; relative pack paths and path globs are taken from ``path``'s folder."""

    def fail(key: str, problem: str) -> ProjectConfigError:
        return ProjectConfigError(f"{path}: {key}: {problem}")

    _known(raw, _TOP_KEYS, "", fail)
    rules = _table(raw, "rules", fail)
    allow = _table(raw, "allowlist", fail)
    _known(rules, _RULES_KEYS, "rules.", fail)
    _known(allow, _ALLOWLIST_KEYS, "allowlist.", fail)
    base = path.parent
    try:
        paths = PathRules.of(_strings(allow, "paths", "allowlist.", fail))
    except GlobError as error:
        raise fail("allowlist.paths", str(error)) from None
    try:
        content = ContentAllowlist(
            secrets=compile_regexes(_strings(allow, "secrets", "allowlist.", fail), "allowlist.secrets"),
            lines=compile_regexes(_strings(allow, "lines", "allowlist.", fail), "allowlist.lines"),
            stopwords=tuple(word.lower() for word in _strings(allow, "stopwords", "allowlist.", fail)),
        )
    except PatternError as error:
        raise ProjectConfigError(f"{path}: {error}") from None
    severity = raw.get("min_severity")
    if severity is not None and severity not in [s.value for s in Severity]:
        raise fail("min_severity", f"must be one of {', '.join(s.value for s in Severity)}")
    return ProjectConfig(
        path=path,
        base=base,
        paths=paths,
        content=content,
        disabled_rules=frozenset(_strings(rules, "disable", "rules.", fail)),
        packs=tuple(base / pack for pack in _strings(rules, "packs", "rules.", fail)),
        min_severity=Severity(severity) if severity is not None else None,
    )


def _known(table: dict[str, Any], keys: set[str], prefix: str, fail: Any) -> None:
    unknown = sorted(set(table) - keys)
    if unknown:
        raise fail(prefix + unknown[0], f"unknown key (known: {', '.join(sorted(keys))})")


def _table(raw: dict[str, Any], key: str, fail: Any) -> dict[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise fail(key, "must be a table")
    return value


def _strings(table: dict[str, Any], key: str, prefix: str, fail: Any) -> Sequence[str]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise fail(prefix + key, "must be a list of non-empty strings")
    return value


def below(severity: Severity, threshold: Severity) -> bool:
    """Whether ``severity`` ranks under ``threshold``."""
    return SEVERITY_ORDER[severity] < SEVERITY_ORDER[threshold]
