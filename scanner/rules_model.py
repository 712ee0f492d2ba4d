"""The compiled rule: what a pack entry becomes once validated, and the rule set a scanner runs.

Shared by the pack loader (``ruleset``) and the gitleaks translator (``gitleaks``), so that neither
imports the other.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import regex

from jitsec.kernel.lazy_regex import LazyPattern
from jitsec.kernel.records import Severity

# The syntactic contexts every example is checked in (scanner.rule_examples wraps it in each).
CONTEXTS = ("raw", "json", "kv", "yaml", "env", "url", "header")


class RuleError(ValueError):
    """A pack or rule is invalid. The message names the pack, the rule and the field."""

    def __init__(self, pack: str, rule: str | None, field_name: str | None, problem: str) -> None:
        self.pack, self.rule, self.field, self.problem = pack, rule, field_name, problem
        where = f"pack {pack!r}"
        if rule is not None:
            where += f", rule {rule!r}"
        if field_name is not None:
            where += f", field {field_name!r}"
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True, slots=True)
class RuleExample:
    """A string a rule must find (example) or must not find (counterexample)."""

    secret: str | None = None
    key: str = "token"
    text: str | None = None
    contexts: tuple[str, ...] = CONTEXTS


RulePattern: TypeAlias = LazyPattern | regex.Pattern[str]


@dataclass(frozen=True, slots=True)
class Allowlist:
    regexes: tuple[RulePattern, ...] = ()
    stopwords: tuple[str, ...] = ()  # lowercase
    context: tuple[RulePattern, ...] = ()


@dataclass(frozen=True, slots=True)
class Rule:
    """A compiled rule. ``secret_group`` is ``"secret"`` for packs; gitleaks rules may use a number."""

    id: str
    pack: str
    description: str
    pattern: RulePattern
    keywords: tuple[str, ...]  # lowercase; empty only for translated gitleaks rules (always scanned)
    severity: Severity
    tags: tuple[str, ...] = ()
    entropy: float | None = None
    validator: str | None = None
    judge: str | None = None
    multiline: bool = False
    hyperscan: str | None = None
    secret_group: str | int = "secret"
    allowlist: Allowlist = field(default_factory=Allowlist)
    examples: tuple[RuleExample, ...] = ()
    counterexamples: tuple[RuleExample, ...] = ()
    revoke: str = ""  # where this kind of credential is revoked or rotated (reports only, not matching)
    remediation: str = ""  # what to do about a leak of it, for alerts (empty: the pack family's default)
    # A finding of this rule within ``pair_lines`` lines of one of a ``pairs_with`` rule in the same
    # origin is the companion half of a pair: folded into that finding as ``related`` (scanner.pairs).
    pairs_with: tuple[str, ...] = ()
    pair_lines: int = 0

    def canonical(self) -> dict[str, Any]:
        """The matching-relevant content, for the digest."""
        return {
            "id": self.id,
            "regex": self.pattern.pattern,
            "flags": self.pattern.flags,
            "keywords": list(self.keywords),
            "severity": self.severity.value,
            "entropy": self.entropy,
            "validator": self.validator,
            "judge": self.judge,
            "multiline": self.multiline,
            "hyperscan": self.hyperscan,
            "secret_group": self.secret_group,
            "allow_regexes": [p.pattern for p in self.allowlist.regexes],
            "allow_stopwords": list(self.allowlist.stopwords),
            "allow_context": [p.pattern for p in self.allowlist.context],
            # only when set: the digest of a rule that pairs with nothing stays what it was
            **({"pairs_with": list(self.pairs_with), "pair_lines": self.pair_lines}
               if self.pairs_with else {}),
        }


@dataclass(frozen=True, slots=True)
class RuleSet:
    """The rules a scanner runs, with the vendor-published example values every non-broker rule
    ignores (``published_examples``)."""

    rules: tuple[Rule, ...]
    digest: str
    packs: tuple[str, ...] = ()
    published_examples: frozenset[str] = frozenset()

    def by_id(self, rule_id: str) -> Rule:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(rule_id)


def ruleset_digest(rules: Iterable[Rule], published_examples: Iterable[str] = ()) -> str:
    canonical: list[Any] = [rule.canonical() for rule in sorted(rules, key=lambda r: r.id)]
    examples = sorted(published_examples)
    if examples:  # absent, the digest stays what it was before examples existed
        canonical.append({"published_examples": examples})
    blob = json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:16]


def check_pairs(rules: Sequence[Rule]) -> None:
    """Every ``pairs_with`` names a rule of the set that does not itself pair (one level: the partner
    is the finding that stays)."""
    by_id = {rule.id: rule for rule in rules}
    for rule in rules:
        for partner in rule.pairs_with:
            if partner not in by_id:
                raise RuleError(rule.pack, rule.id, "pairs_with", f"no loaded rule has the id {partner!r}")
            if by_id[partner].pairs_with:
                raise RuleError(rule.pack, rule.id, "pairs_with",
                                f"{partner!r} pairs with other rules itself; a partner must not")


def make_ruleset(rules: Sequence[Rule], packs: Sequence[str] = (),
                 published_examples: frozenset[str] = frozenset()) -> RuleSet:
    seen: dict[str, str] = {}
    for rule in rules:
        if rule.id in seen:
            raise RuleError(rule.pack, rule.id, "id", f"duplicate rule id (also in pack {seen[rule.id]!r})")
        seen[rule.id] = rule.pack
    return RuleSet(rules=tuple(rules), digest=ruleset_digest(rules, published_examples), packs=tuple(packs),
                   published_examples=published_examples)
