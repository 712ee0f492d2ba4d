"""Secrets that belong together reported as one finding.

An AWS access key id and its secret access key are one credential: two findings would become two
incidents and two alerts for one rotation. A rule declares itself the companion half of such a pair
(``pairs_with``: the rules whose finding is the other half, ``pair_lines``: how far apart the two may
be, 0 = the same line). Where a companion finding has a partner finding in the same origin within that
many lines, the companion is folded into the partner as ``related`` (its rule, location, redacted
preview and keyed fingerprint) and is no longer a finding of its own. The partner stays the finding:
it is the half that must be rotated, and its fingerprint is what incidents and baselines key on, so a
baseline that accepted the secret keeps accepting the pair.

Each companion joins its nearest partner (fewest lines apart, then fewest bytes); a partner takes at
most one companion of each rule, so a second key id near one secret stays a finding of its own.
Pairs are made among the findings of one scanned buffer (a whole chunk, or what a stream scans at
once): a pair split between two reads of a growing stream stays two findings.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import replace

from jitsec.scanner.rules_model import Rule

from jitsec.kernel.records import Finding, Origin, Related

Pairing = tuple[frozenset[str], int]
"""A companion rule's partners and its window in lines."""


def pairings(rules: Sequence[Rule]) -> dict[str, Pairing]:
    """Companion rule id → (partner rule ids, window), for the rules that declare a pair."""
    return {rule.id: (frozenset(rule.pairs_with), rule.pair_lines) for rule in rules if rule.pairs_with}


def pair_findings(findings: list[Finding], companions: Mapping[str, Pairing]) -> list[Finding]:
    """``findings`` with every companion that has a partner nearby folded into it (order kept)."""
    if not companions or not any(finding.rule_id in companions for finding in findings):
        return findings
    joined: dict[int, list[int]] = {}  # partner → its companions
    taken: set[int] = set()  # companions folded into a partner
    filled: set[tuple[int, str]] = set()  # (partner, companion rule) already joined
    for _lines, _bytes, index, other in sorted(_options(findings, companions)):
        rule_id = findings[index].rule_id
        if index not in taken and (other, rule_id) not in filled:
            taken.add(index)
            filled.add((other, rule_id))
            joined.setdefault(other, []).append(index)
    if not taken:
        return findings
    out = []
    for position, finding in enumerate(findings):
        halves = joined.get(position)
        if halves:
            related = tuple(_related(findings[index]) for index in sorted(halves))
            out.append(replace(finding, related=finding.related + related))
        elif position not in taken:
            out.append(finding)
    return out


def _options(findings: list[Finding], companions: Mapping[str, Pairing]) -> list[tuple[int, int, int, int]]:
    """Every possible pair as (lines apart, bytes apart, companion index, partner index)."""
    wanted = frozenset().union(*(partners for partners, _ in companions.values()))
    by_origin: dict[Origin, list[tuple[int, int]]] = {}  # origin → sorted (line, index) of partners
    for index, finding in enumerate(findings):
        if finding.rule_id in wanted:
            by_origin.setdefault(finding.origin, []).append((finding.line, index))
    for partners_here in by_origin.values():
        partners_here.sort()
    options = []
    for index, companion in enumerate(findings):
        pairing = companions.get(companion.rule_id)
        nearby = by_origin.get(companion.origin)
        if pairing is None or not nearby:
            continue
        partners, window = pairing
        first = bisect_left(nearby, (companion.line - window, -1))
        last = bisect_right(nearby, (companion.line + window, len(findings)))
        for line, other in nearby[first:last]:
            partner = findings[other]
            if partner.rule_id in partners and partner.fingerprint != companion.fingerprint:
                distance = abs(partner.offset - companion.offset)
                options.append((abs(line - companion.line), distance, index, other))
    return options


def _related(finding: Finding) -> Related:
    return Related(rule_id=finding.rule_id, line=finding.line, column=finding.column, offset=finding.offset,
                   preview=finding.preview, fingerprint=finding.fingerprint)
