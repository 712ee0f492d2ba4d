"""SCRAM user names for leases: which agent and task a connection belongs to, and when it was issued.

``<prefix><agent>_<task id>_<hash>_<issued>``: the task's id, never its name (user names show up in
every broker's request log and in ACL listings). Agent and task keep Kafka's safe alphabet (ASCII
letters, digits, ``.``, ``_``, ``-``); anything else becomes ``-``, so a name never needs quoting in
a client's JAAS line. They are cut to share the space left under ``MAX_USER_LENGTH``; the 10 hex
digits of SHA-256 over (agent, task, lease id) keep two leases apart even when their readable parts
collide. Kafka keeps no creation time for a SCRAM user, so the name carries one (``issued``: Unix
seconds in base 36): the reconciler spares users younger than its grace period with no other state.
The prefix (default ``jitsec_``) is reserved for the broker.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

DEFAULT_USER_PREFIX = "jitsec_"
MAX_USER_LENGTH = 96
HASH_HEX_DIGITS = 10
_MIN_SPACE = 8  # characters left for agent and task together, at least
_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"
_TIME_DIGITS = 7  # base 36, enough until the year 4453


@dataclass(frozen=True, slots=True)
class UserMark:
    """What a managed user's name says about it."""

    name: str
    issued_at: int


def validate_prefix(prefix: str) -> str:
    """A prefix is lowercase ASCII letters, digits and ``_``, short enough to leave room for names."""
    if not prefix or not all(ch.isascii() and (ch.islower() or ch.isdigit() or ch == "_") for ch in prefix):
        raise ValueError(f"user prefix {prefix!r} must be lowercase ASCII letters, digits or '_'")
    if len(prefix) + 3 + HASH_HEX_DIGITS + _TIME_DIGITS + _MIN_SPACE > MAX_USER_LENGTH:
        raise ValueError(f"user prefix {prefix!r} is too long to leave room for agent and task")
    return prefix


def user_name(prefix: str, agent: str, task: str, lease_id: str, issued_at: float) -> str:
    """The SCRAM user name for one lease (at most ``MAX_USER_LENGTH`` ASCII characters)."""
    validate_prefix(prefix)
    digest = hashlib.sha256("\x00".join((agent, task, lease_id)).encode("utf-8", "surrogatepass"))
    tail = f"_{digest.hexdigest()[:HASH_HEX_DIGITS]}_{_base36(int(issued_at))}"
    space = MAX_USER_LENGTH - len(prefix) - len(tail) - 1
    clean_agent, clean_task = _safe(agent), _safe(task)
    cut_agent = clean_agent[: max(space // 2, space - len(clean_task))]
    cut_task = clean_task[: space - len(cut_agent)]
    return f"{prefix}{cut_agent}_{cut_task}{tail}"


def parse_user(prefix: str, name: str) -> UserMark | None:
    """The mark of a user this engine made under ``prefix``, or None for anybody else's user."""
    if not name.startswith(prefix) or len(name) > MAX_USER_LENGTH:
        return None
    body = name[len(prefix):]
    parts = body.rsplit("_", 2)
    if len(parts) != 3 or "_" not in parts[0]:  # agent and task are separated by "_"
        return None
    digest, issued = parts[1], parts[2]
    if len(digest) != HASH_HEX_DIGITS or any(ch not in "0123456789abcdef" for ch in digest):
        return None
    if not issued or len(issued) > _TIME_DIGITS or any(ch not in _BASE36 for ch in issued):
        return None
    return UserMark(name=name, issued_at=int(issued, 36))


def _safe(text: str) -> str:
    return "".join(ch if ch in _SAFE else "-" for ch in text)


def _base36(value: int) -> str:
    digits: list[str] = []
    value = max(value, 0)
    while value:
        value, rest = divmod(value, 36)
        digits.append(_BASE36[rest])
    return "".join(reversed(digits)) or "0"
