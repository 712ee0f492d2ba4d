"""Role names for leases: they say which agent and task a session belongs to, and fit in 63 bytes.

``<prefix><agent>_<task id>_<hash>``: the task's id, never its name (every database user reads role
names in ``pg_roles``; a task name is free text). The prefix (default ``jitsec_``) is reserved for the
broker so the reconciler can find its roles; agent and task are cut on UTF-8 character boundaries to share the
space left; the 10 hex digits of SHA-256 over (agent, task, lease id) keep two leases apart even when
their names were cut to the same text. Names are never sanitised into "safe" characters: they are
always quoted with ``sql.Identifier``; only characters PostgreSQL cannot store (NUL, other C0
controls) are replaced, so ``pg_stat_activity`` stays readable.
"""

from __future__ import annotations

import hashlib

from jitsec.broker.engines.postgres_scope import MAX_IDENTIFIER_BYTES

DEFAULT_ROLE_PREFIX = "jitsec_"
HASH_HEX_DIGITS = 10
_MIN_SPACE = 8  # bytes left for agent and task together, at least


def validate_prefix(prefix: str) -> str:
    """A prefix is lowercase ASCII letters, digits and ``_``, short enough to leave room for names."""
    if not prefix or not all(ch.isascii() and (ch.islower() or ch.isdigit() or ch == "_") for ch in prefix):
        raise ValueError(f"role prefix {prefix!r} must be lowercase ASCII letters, digits or '_'")
    if len(prefix) + 2 + HASH_HEX_DIGITS + _MIN_SPACE > MAX_IDENTIFIER_BYTES:
        raise ValueError(f"role prefix {prefix!r} is too long to leave room for agent and task")
    return prefix


def role_name(prefix: str, agent: str, task: str, lease_id: str) -> str:
    """The role name for one lease (deterministic, at most 63 UTF-8 bytes)."""
    validate_prefix(prefix)
    digest = hashlib.sha256("\x00".join((agent, task, lease_id)).encode("utf-8", "surrogatepass"))
    suffix = digest.hexdigest()[:HASH_HEX_DIGITS]
    space = MAX_IDENTIFIER_BYTES - len(prefix) - len(suffix) - 2
    clean_agent, clean_task = _printable(agent), _printable(task)
    agent_budget = max(space // 2, space - len(clean_task.encode("utf-8")))
    cut_agent = _cut_utf8(clean_agent, agent_budget)
    cut_task = _cut_utf8(clean_task, space - len(cut_agent.encode("utf-8")))
    return f"{prefix}{cut_agent}_{cut_task}_{suffix}"


def _printable(text: str) -> str:
    return "".join("?" if _is_unstorable(ch) else ch for ch in text)


def _is_unstorable(ch: str) -> bool:
    code = ord(ch)
    return code < 0x20 or code == 0x7F or 0xD800 <= code <= 0xDFFF


def _cut_utf8(text: str, limit: int) -> str:
    """The longest prefix of ``text`` whose UTF-8 encoding fits ``limit`` bytes."""
    encoded = text.encode("utf-8")
    if len(encoded) <= limit:
        return text
    return encoded[: max(limit, 0)].decode("utf-8", "ignore")
