"""The Kafka scope grammar: ``kafka:topic:<name>:READ|WRITE`` and ``kafka:group:<name>``.

A scope names one topic and one operation, or one consumer group (joining it and committing its
offsets: Kafka's ``READ`` on the group). Names use Kafka's topic alphabet (ASCII letters, digits,
``.``, ``_``, ``-``; 1 to 249 characters), for groups too, so a scope is its own canonical spelling
and a name never needs quoting. A trailing ``*`` (``kafka:topic:logs.*:READ``) asks for every name
starting with what precedes it (a Kafka PREFIXED ACL, which also covers topics created later); it is
refused unless the engine allows prefixes, and a bare ``*`` (everything) is always refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from jitsec.broker import errors

SCOPE_ENGINE = "kafka"
MAX_NAME_LENGTH = 249  # Kafka's limit for topic names
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


class ScopeError(errors.ScopeError):
    """A scope string that the grammar or the engine's settings refuse; the message says why (HTTP 422)."""


class ResourceKind(Enum):
    TOPIC = "topic"
    GROUP = "group"


class Operation(Enum):
    """What a topic scope allows; Kafka implies DESCRIBE with each."""

    READ = "READ"
    WRITE = "WRITE"


@dataclass(frozen=True, slots=True)
class KafkaScope:
    """One ACL to grant: an operation on a topic, or READ on a consumer group. ``name`` holds no
    ``*``; ``prefixed`` says the ACL covers every name starting with it."""

    kind: ResourceKind
    name: str
    operation: Operation
    prefixed: bool = False

    def render(self) -> str:
        """The canonical text of this scope (``parse_scope(s.render()) == s``)."""
        name = self.name + ("*" if self.prefixed else "")
        if self.kind is ResourceKind.GROUP:
            return f"{SCOPE_ENGINE}:group:{name}"
        return f"{SCOPE_ENGINE}:topic:{name}:{self.operation.value}"


def is_kafka_scope(text: str) -> bool:
    return text.startswith(SCOPE_ENGINE + ":")


def parse_scope(text: str, *, allow_prefixed: bool = False) -> KafkaScope:
    """Parse one scope; raise ScopeError naming the problem."""
    parts = text.split(":")
    if parts[0] != SCOPE_ENGINE:
        raise ScopeError(f"scope {text!r} does not start with '{SCOPE_ENGINE}:'")
    kind_text = parts[1] if len(parts) > 1 else ""
    if kind_text == ResourceKind.TOPIC.value:
        if len(parts) != 4:
            raise ScopeError(f"scope {text!r}: a topic scope is kafka:topic:<name>:READ or :WRITE")
        try:
            operation = Operation(parts[3])
        except ValueError:
            known = ", ".join(o.value for o in Operation)
            raise ScopeError(f"scope {text!r}: unknown operation {parts[3]!r} (known: {known})") from None
        kind = ResourceKind.TOPIC
    elif kind_text == ResourceKind.GROUP.value:
        if len(parts) != 3:
            raise ScopeError(f"scope {text!r}: a group scope is kafka:group:<name>")
        kind, operation = ResourceKind.GROUP, Operation.READ
    else:
        raise ScopeError(f"scope {text!r}: expected 'topic' or 'group' after 'kafka:'")
    name, prefixed = _name(text, parts[2], kind, allow_prefixed=allow_prefixed)
    return KafkaScope(kind=kind, name=name, operation=operation, prefixed=prefixed)


def _name(text: str, raw: str, kind: ResourceKind, *, allow_prefixed: bool) -> tuple[str, bool]:
    prefixed = raw.endswith("*")
    name = raw[:-1] if prefixed else raw
    if prefixed and not name:
        raise ScopeError(f"scope {text!r}: every {kind.value} ('*') is never granted; name one or a prefix")
    if not name:
        raise ScopeError(f"scope {text!r}: empty {kind.value} name")
    if len(name) > MAX_NAME_LENGTH:
        raise ScopeError(f"scope {text!r}: the {kind.value} name is longer than {MAX_NAME_LENGTH} characters")
    bad = sorted({ch for ch in name if ch not in _NAME_CHARS})
    if bad:
        raise ScopeError(
            f"scope {text!r}: the {kind.value} name may hold only ASCII letters, digits, '.', '_' and '-' "
            f"(found {''.join(bad)!r})"
        )
    if name in {".", ".."}:
        raise ScopeError(f"scope {text!r}: {name!r} is not a valid {kind.value} name")
    if prefixed and not allow_prefixed:
        raise ScopeError(
            f"scope {text!r}: prefixed {kind.value} scopes ('{name}*') are not allowed by the engine's "
            "settings"
        )
    return name, prefixed
