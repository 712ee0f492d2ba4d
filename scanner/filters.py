"""Checks a confirmed regex match must pass to become a finding, cheapest first.

Rule-specific: stopwords, entropy, validator, allowlist regexes, allowlist context, judge. Generic hard
negatives apply to HEURISTIC rules only (rules without a checksum validator): templated or
placeholder values, UUIDs, sequences, digests next to ``sha256``/``commit``/``integrity``. They reuse
detect-secrets' heuristics where those fit (``detect_secrets.filters.heuristic``).
"""

from __future__ import annotations

import math
from collections import Counter
from functools import cache
from types import ModuleType

from jitsec.scanner.judges import JUDGES
from jitsec.scanner.ruleset import Rule
from jitsec.scanner.validators import VALIDATORS

from jitsec.kernel.lazy_regex import LazyPattern

PRAGMA = "pragma: allowlist secret"  # detect-secrets'
PRAGMA_NEXTLINE = "pragma: allowlist nextline secret"
# Inline markers that excuse the line they are on: detect-secrets', gitleaks' and our own.
INLINE_ALLOWS = (PRAGMA, "gitleaks:allow", "jitsec:allow")

_PLACEHOLDER_WORDS = ("xxxx", "changeme", "change_me", "redacted", "placeholder", "****", "${", "{{", "%(")
# A digest or id named as such just before the value, e.g. `sha256:`, `"commit": "`, `integrity="`.
_DIGEST_CONTEXT = LazyPattern(
    r"(?i)(?:sha(?:1|224|256|384|512)?|md5|digest|checksum|hash|hashed[_-]?secret|commit|integrity|etag|"
    r"trace[_-]?id|span[_-]?id|request[_-]?id|uuid|guid|nonce)[\"']?\s*[:=]?\s*[\"']?\s*$"
)
# printf/format placeholders standing where a value will go: %s, %-10s, %(password)s, %1$s
_FORMAT_PLACEHOLDER = LazyPattern(r"%(?:\([^)]*\)|\d+\$)?[-#0 +]*\d*(?:\.\d+)?[sdrifxXq]")
_DIGEST_VALUE = LazyPattern(r"(?i)^(?:sha(?:1|256|384|512)[-:]|md5[-:])")


@cache
def _heuristics() -> ModuleType:
    """detect-secrets' heuristics, imported on first use: importing the package costs ~0.2 s, which
    a pre-commit run over clean files should not pay."""
    from detect_secrets.filters import heuristic  # noqa: PLC0415

    return heuristic


def shannon_entropy(text: str) -> float:
    """Bits per character of ``text``'s own character distribution."""
    if not text:
        return 0.0
    length = len(text)
    return -sum(n / length * math.log2(n / length) for n in Counter(text).values())


def is_placeholder(secret: str) -> bool:
    """Templates and well-known filler values that are never real secrets."""
    lowered = secret.lower()
    heuristic = _heuristics()
    return (
        heuristic.is_templated_secret(secret)
        or heuristic.is_prefixed_with_dollar_sign(secret)
        or any(word in lowered for word in _PLACEHOLDER_WORDS)
        or (lowered.startswith("<") and lowered.endswith(">"))
        or bool(_FORMAT_PLACEHOLDER.fullmatch(secret))
    )


def is_generic_negative(secret: str, before: str) -> bool:
    """Hard negatives for heuristic rules; ``before`` is the text before the match on its line."""
    heuristic = _heuristics()
    return (
        is_placeholder(secret)
        or heuristic.is_not_alphanumeric_string(secret)
        or heuristic.is_sequential_string(secret)
        or heuristic.is_potential_uuid(secret)
        or bool(_DIGEST_VALUE.match(secret))
        or bool(_DIGEST_CONTEXT.search(before[-64:]))
    )


REGEX_TIMEOUT = 0.25  # as the engine's: an allowlist regex that backtracks stops its rule's window


def passes_rule(rule: Rule, secret: str, before: str, after: str = "") -> bool:
    """The rule's own checks, cheapest first; ``before`` as in ``is_generic_negative``, ``after`` the
    text after the secret on its line (for the rule's judge)."""
    allow = rule.allowlist
    if allow.stopwords:
        lowered = secret.lower()
        if any(word in lowered for word in allow.stopwords):
            return False
    if rule.entropy is not None and shannon_entropy(secret) < rule.entropy:
        return False
    if rule.validator is not None and not VALIDATORS[rule.validator](secret):
        return False
    if any(pattern.search(secret, timeout=REGEX_TIMEOUT) for pattern in allow.regexes):
        return False
    if any(pattern.search(before, timeout=REGEX_TIMEOUT) for pattern in allow.context):
        return False
    return rule.judge is None or JUDGES[rule.judge](secret, before, after)


def is_lock_path(path: str | None) -> bool:
    """Lock files are full of integrity hashes; heuristic rules stay silent there."""
    if not path:
        return False
    name = path.rsplit("/", 1)[-1].lower()
    # Every lock file detect-secrets knows has "lock" or ".resolved" in its name; skip the import otherwise.
    return ("lock" in name or name.endswith(".resolved")) and _heuristics().is_lock_file(path)
