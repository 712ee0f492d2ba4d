"""``.gitleaksignore``: findings a gitleaks user already marked as accepted, one fingerprint a line.

gitleaks writes two forms (``#`` starts a comment line, blank lines are skipped):

- ``file:rule-id:line`` — a file, wherever it was found (directory scans, and any commit);
- ``commit:file:rule-id:line`` — one commit's version (history scans). gitleaks up to 8.25 writes
  the full commit id, later versions its 7-character prefix: any prefix of 7 or more hex digits
  matches.

``file`` is the path relative to the scanned folder (a repository path in history), with ``/``;
``line`` is the 1-based line of the finding. A rule id matches ours only when it is the same id, or,
for a rule translated from a gitleaks config (``gitleaks-<id>``), that config's own ``<id>``: the
ids of gitleaks' built-in rules mostly differ from jitsec's, so those entries match nothing.
Entries of any other shape are reported (``problems``) and skipped, as gitleaks does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

GITLEAKSIGNORE = ".gitleaksignore"
_GITLEAKS_PREFIX = "gitleaks-"
_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True, slots=True)
class IgnoreEntry:
    file: str
    rule_id: str
    line: int
    commit: str | None = None  # lowercase hex prefix (7+ digits), or None for any commit / no commit


@dataclass(frozen=True, slots=True)
class GitleaksIgnore:
    """The parsed file: entries by (file, rule id, line), and the lines that could not be read."""

    entries: dict[tuple[str, str, int], tuple[IgnoreEntry, ...]] = field(default_factory=dict)
    problems: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.entries)

    def __len__(self) -> int:
        return sum(len(found) for found in self.entries.values())

    def accepts(self, file: str, rule_id: str, line: int, commit: str | None = None) -> bool:
        """Whether an entry names this finding: ``file`` relative to the scanned folder (``/``),
        ``commit`` the full id for history findings."""
        for candidate in _rule_ids(rule_id):
            for entry in self.entries.get((file, candidate, line), ()):
                if entry.commit is None or (commit is not None and commit.lower().startswith(entry.commit)):
                    return True
        return False


def _rule_ids(rule_id: str) -> tuple[str, ...]:
    if rule_id.startswith(_GITLEAKS_PREFIX):
        return rule_id, rule_id[len(_GITLEAKS_PREFIX):]
    return (rule_id,)


def parse_gitleaksignore(text: str) -> GitleaksIgnore:
    entries: dict[tuple[str, str, int], list[IgnoreEntry]] = {}
    problems: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        entry = parse_entry(line)
        if entry is None:
            problems.append(f"line {number}: not `file:rule-id:line` nor `commit:file:rule-id:line`")
            continue
        entries.setdefault((entry.file, entry.rule_id, entry.line), []).append(entry)
    return GitleaksIgnore({key: tuple(found) for key, found in entries.items()}, tuple(problems))


def parse_entry(line: str) -> IgnoreEntry | None:
    """One fingerprint, or None when it has neither form (wrong field count, a line that is not a
    positive number, a commit that is not 7+ hex digits, an empty file or rule)."""
    fields = line.split(":")
    commit: str | None = None
    if len(fields) == 4:
        commit = fields.pop(0).lower()
        if len(commit) < 7 or not set(commit) <= _HEX:
            return None
    if len(fields) != 3:
        return None
    file, rule_id, number = fields
    file = file.replace("\\", "/")
    if not file or not rule_id or not number.isascii() or not number.isdigit() or int(number) < 1:
        return None
    return IgnoreEntry(file.removeprefix("./"), rule_id, int(number), commit)


def load_gitleaksignore(path: Path) -> GitleaksIgnore:
    """The file at ``path`` (an absent file accepts nothing); unreadable is an ``OSError``."""
    try:
        return parse_gitleaksignore(path.read_text(encoding="utf-8", errors="replace"))
    except FileNotFoundError:
        return GitleaksIgnore()
