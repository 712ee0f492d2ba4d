"""Policy: which scopes an agent may hold, per engine, and for how long; and what a replayed grant
costs (``ReplayAction``). Pure decisions, no I/O.

Entries match agents by glob pattern (``fnmatch``, case-sensitive), first match wins, so put specific
agents before wildcards. Scope patterns are globs too (``reports:*``). An agent no entry matches may
hold nothing. Every refusal is a ``PolicyDenied`` whose message says why (and names the maximum TTL).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from fnmatch import fnmatchcase

from jitsec.broker.engines.base import EngineLimits
from jitsec.broker.errors import PolicyDenied

from jitsec.kernel.redaction import shown


@dataclass(frozen=True, slots=True)
class EnginePolicy:
    """What an agent may get from one engine; TTLs of None fall back to the engine's limits."""

    scopes: tuple[str, ...]
    default_ttl_seconds: int | None = None
    max_ttl_seconds: int | None = None

    def allows(self, scope: str) -> bool:
        return any(fnmatchcase(scope, pattern) for pattern in self.scopes)

    def ttl_bounds(self, limits: EngineLimits) -> tuple[int, int]:
        """(default, maximum) for this agent and engine: never above the engine's own maximum."""
        maximum = min(self.max_ttl_seconds or limits.max_ttl_seconds, limits.max_ttl_seconds)
        default = min(self.default_ttl_seconds or limits.default_ttl_seconds, maximum)
        return default, maximum


@dataclass(frozen=True, slots=True)
class AgentPolicy:
    agent: str  # glob pattern
    max_task_ttl_seconds: int
    engines: Mapping[str, EnginePolicy] = field(default_factory=dict)

    def allows_scope(self, scope: str) -> bool:
        return any(p.allows(scope) for p in self.engines.values())


@dataclass(frozen=True, slots=True)
class Policy:
    entries: tuple[AgentPolicy, ...] = ()

    def knows(self, agent: str) -> bool:
        """Whether an entry covers ``agent``: its name is then an identity, shown as it is."""
        return any(fnmatchcase(agent, entry.agent) for entry in self.entries)

    def for_agent(self, agent: str) -> AgentPolicy:
        for entry in self.entries:
            if fnmatchcase(agent, entry.agent):
                return entry
        raise PolicyDenied(f"no policy entry matches agent {shown(agent)!r}", code="unknown_agent")

    def task_ttl(self, agent: str, scopes: Sequence[str], ttl_seconds: int | None) -> int:
        """The TTL a new task gets; refuses scopes the agent may not hold and TTLs above its maximum."""
        entry = self.for_agent(agent)
        for scope in scopes:
            if not entry.allows_scope(scope):
                raise PolicyDenied(f"agent {agent!r} may not hold scope {shown(scope)!r}",
                                   code="scope_denied")
        if ttl_seconds is None:
            return entry.max_task_ttl_seconds
        if ttl_seconds > entry.max_task_ttl_seconds:
            raise PolicyDenied(
                f"ttl_seconds {ttl_seconds} exceeds the maximum of "
                f"{entry.max_task_ttl_seconds} seconds for agent {agent!r}",
                code="ttl_too_long",
            )
        return ttl_seconds

    def secret_ttl(
        self, agent: str, engine: str, limits: EngineLimits, scopes: Sequence[str], ttl_seconds: int | None
    ) -> int:
        """The TTL a secret gets before the task-end cap; refuses scopes and TTLs beyond policy."""
        entry = self.for_agent(agent)
        engine_policy = entry.engines.get(engine)
        if engine_policy is None:
            raise PolicyDenied(f"agent {agent!r} may not use engine {shown(engine)!r}",
                               code="engine_denied")
        for scope in scopes:
            if not engine_policy.allows(scope):
                raise PolicyDenied(
                    f"agent {agent!r} may not hold scope {shown(scope)!r} "
                    f"from engine {shown(engine)!r}",
                    code="scope_denied",
                )
        default, maximum = engine_policy.ttl_bounds(limits)
        if ttl_seconds is None:
            return default
        if ttl_seconds > maximum:
            raise PolicyDenied(
                f"ttl_seconds {ttl_seconds} exceeds the maximum of {maximum} seconds "
                f"for engine {shown(engine)!r} and agent {agent!r}",
                code="ttl_too_long",
            )
        return ttl_seconds


class ReplayAction(Enum):
    """``[broker] on_grant_replay``: what the broker does when a redeemed grant is presented again.

    Either way the presenter gets 401 ``grant_replayed`` and a ``replay`` audit record. ``end-task``
    also ends the task and revokes every lease it holds (RFC 6749 §4.1.2): if a thief redeemed the
    grant first, the legitimate agent's redemption is the replay, and the thief's token must die.
    """

    END_TASK = "end-task"
    REFUSE = "refuse"  # refuse the replay only; the token issued at the first redemption stays valid
