"""Redacted previews: how a secret may be shown anywhere (alerts, logs, errors, reports)."""

from __future__ import annotations

from jitsec.kernel.lazy_regex import LazyPattern

_KNOWN_PREFIX = LazyPattern(r"^[A-Za-z]{2,12}[_-]")
REDACTION = "…"


def preview(secret: str) -> str:
    """A recognisable but useless rendering: a public prefix and at most 4 characters, never more
    than a quarter of the secret, plus its length."""
    if not secret:
        return "(empty)"
    prefix_match = _KNOWN_PREFIX.match(secret)
    prefix = prefix_match.group(0) if prefix_match and len(secret) >= 16 else ""
    rest = secret[len(prefix):]
    shown = min(4, len(rest) // 4)
    return f"{prefix}{rest[:shown]}{REDACTION}({len(secret)} chars)"


def scrub(text: str, secrets_in_hand: list[str] | tuple[str, ...]) -> str:
    """Replace every occurrence of the given secrets in ``text`` by their preview.

    For messages built while a secret is in hand (exceptions, log lines): the caller names the
    secrets it holds; nothing else is guessed here.
    """
    for secret in sorted(set(secrets_in_hand), key=len, reverse=True):
        if secret:
            text = text.replace(secret, preview(secret))
    return text


def printable(text: str) -> str:
    """``text`` fit for a terminal or a log line: control characters (ESC sequences, newlines, bells)
    become ``?``, so a hostile path or log line cannot move the cursor, clear the screen or forge
    another line."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)


SHOWN_CHARS = 64
_OWN_ID = LazyPattern(r"(?:tsk|lse)_[0-9a-f]{8,64}")  # the broker's task and lease ids


def shown(value: str) -> str:
    """A refused or unknown value as an error message or audit record may repeat it: printable, at
    most ``SHOWN_CHARS`` characters, and a redacted preview when it looks like a credential (a
    hostile caller puts secrets where names go, and the audit chain cannot be edited later)."""
    if looks_like_credential(value):
        return printable(preview(value))
    text = printable(value)
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + REDACTION


def looks_like_credential(value: str) -> bool:
    """Long, random-looking, unstructured text: letters and digits mixed, no separators that names,
    scopes and ids are made of. Errs towards redacting (a redacted name costs a less helpful message)."""
    if len(value) < 20 or any(ch in value for ch in ":/. ") or _OWN_ID.fullmatch(value):
        return False
    has_digit = any(ch.isdigit() for ch in value)
    has_upper = any(ch.isupper() for ch in value)
    has_lower = any(ch.islower() for ch in value)
    return has_digit and has_lower and (has_upper or len(set(value)) >= 16)
