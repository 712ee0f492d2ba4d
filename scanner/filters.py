"""Checks a confirmed regex match must pass to become a finding, cheapest first.

Rule-specific: stopwords, entropy, validator, allowlist regexes, allowlist context. Generic hard
negatives apply to HEURISTIC rules only (rules without a checksum validator): templated or
placeholder values, UUIDs, sequences, digests next to ``sha256``/``commit``/``integrity``. They reuse
detect-secrets' heuristics where those fit (``detect_secrets.filters.heuristic``).
"""

from __future__ import annotations

import math
from collections import Counter

import regex
from detect_secrets.filters.heuristic import (
    is_lock_file,
    is_not_alphanumeric_string,
    is_potential_uuid,
    is_prefixed_with_dollar_sign,
    is_sequential_string,
    is_templated_secret,
)

from scanner.ruleset import Rule
from scanner.validators import VALIDATORS

PRAGMA = "pragma: allowlist secret"
PRAGMA_NEXTLINE = "pragma: allowlist nextline secret"

_PLACEHOLDER_WORDS = ("xxxx", "changeme", "change_me", "redacted", "placeholder", "****", "${", "{{", "%(")
# A digest or id named as such just before the value, e.g. `sha256:`, `"commit": "`, `integrity="`.
_DIGEST_CONTEXT = regex.compile(
    r"(?i)(?:sha(?:1|224|256|384|512)?|md5|digest|checksum|hash|commit|integrity|etag|"
    r"trace[_-]?id|span[_-]?id|request[_-]?id|uuid|guid|nonce)[\"']?\s*[:=]?\s*[\"']?\s*$"
)
_DIGEST_VALUE = regex.compile(r"(?i)^(?:sha(?:1|256|384|512)[-:]|md5[-:])")


def shannon_entropy(text: str) -> float:
    """Bits per character of ``text``'s own character distribution."""
    if not text:
        return 0.0
    length = len(text)
    return -sum(n / length * math.log2(n / length) for n in Counter(text).values())


def is_placeholder(secret: str) -> bool:
    """Templates and well-known filler values that are never real secrets."""
    lowered = secret.lower()
    return (
        is_templated_secret(secret)
        or is_prefixed_with_dollar_sign(secret)
        or any(word in lowered for word in _PLACEHOLDER_WORDS)
        or (lowered.startswith("<") and lowered.endswith(">"))
    )


def is_generic_negative(secret: str, before: str) -> bool:
    """Hard negatives for heuristic rules; ``before`` is the text before the match on its line."""
    return (
        is_placeholder(secret)
        or is_not_alphanumeric_string(secret)
        or is_sequential_string(secret)
        or is_potential_uuid(secret)
        or bool(_DIGEST_VALUE.match(secret))
        or bool(_DIGEST_CONTEXT.search(before[-64:]))
    )


def passes_rule(rule: Rule, secret: str, before: str) -> bool:
    """The rule's own checks, cheapest first; ``before`` as in ``is_generic_negative``."""
    allow = rule.allowlist
    if allow.stopwords:
        lowered = secret.lower()
        if any(word in lowered for word in allow.stopwords):
            return False
    if rule.entropy is not None and shannon_entropy(secret) < rule.entropy:
        return False
    if rule.validator is not None and not VALIDATORS[rule.validator](secret):
        return False
    if any(pattern.search(secret) for pattern in allow.regexes):
        return False
    return not any(pattern.search(before) for pattern in allow.context)


def is_lock_path(path: str | None) -> bool:
    """Lock files are full of integrity hashes; heuristic rules stay silent there."""
    return bool(path) and is_lock_file(path)
