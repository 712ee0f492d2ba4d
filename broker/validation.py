"""Input rules shared by every entry point (API, CLI, leak response): names, scopes, free text.

Checked in the service, not only in the HTTP schema, so that no caller can bypass them. Messages say
what is allowed and never repeat the refused value (it may be hostile or a secret).
"""

from __future__ import annotations

from collections.abc import Sequence

import regex
from jitsec.broker.errors import BadRequest

AGENT_NAME = regex.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@\-]{0,127}")
TASK_NAME = regex.compile(r"[\p{L}\p{N}\p{P}\p{S} ]{1,200}")  # no control, format or separator characters
SCOPE = regex.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/*\-]{0,127}")  # "*": schema-wide postgres scopes
MAX_SCOPES = 32
MAX_DETAIL_CHARS = 500


def clean_detail(text: str) -> str:
    """Free text bound for the audit: printable, bounded (never a secret: callers pass none)."""
    printable = "".join(ch if ch.isprintable() else "?" for ch in text)
    return printable[:MAX_DETAIL_CHARS]


def check_agent(agent: str) -> None:
    if not AGENT_NAME.fullmatch(agent):
        raise BadRequest(
            "agent must be 1-128 characters: letters, digits and _ . : @ - (starting with a letter or digit)",
            code="invalid_agent",
        )


def check_scopes(scopes: Sequence[str]) -> tuple[str, ...]:
    if not scopes:
        raise BadRequest("scopes must name at least one scope", code="invalid_scope")
    if len(scopes) > MAX_SCOPES:
        raise BadRequest(f"at most {MAX_SCOPES} scopes per request", code="invalid_scope")
    for scope in scopes:
        if not SCOPE.fullmatch(scope):
            raise BadRequest(
                "each scope must be 1-128 characters: letters, digits and _ . : / * -", code="invalid_scope"
            )
    return tuple(dict.fromkeys(scopes))


def check_task_name(name: str) -> None:
    if not TASK_NAME.fullmatch(name):
        raise BadRequest(
            "task must be 1-200 printable characters (no control or format characters)", code="invalid_task"
        )
