"""The leak loop's wire records, shared by the scanner side (the response, the broker client) and the
broker (``POST /v1/leaks``, ``GET /v1/fingerprints``): fingerprints and locations, never a secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any


class LeakScope(Enum):
    """How much to revoke when a live lease leaked."""

    LEASE = "lease"
    TASK = "task"
    AGENT = "agent"


class LeakStatus(Enum):
    REVOKED = "revoked"  # it was live; revoked now because of this report (the engine confirmed)
    PENDING = "pending"  # it was live; revocation started, the engine failed transiently, retries run
    FAILED = "failed"  # it was live; revocation failed for good (irrevocable until expiry): alerted
    DEAD = "dead"  # already revoked or expired before this report
    UNKNOWN = "unknown"  # no lease has this fingerprint
    REFUSED = "refused"  # it is live, but the reporter's revocation budget is spent: alerted, not revoked


@dataclass(frozen=True, slots=True)
class LeakReport:
    """One sighting as reported: the secret's hex SHA-256 and where it was seen (no secret)."""

    fingerprint: str
    location: str = ""
    rule_id: str = ""
    seen_at: float | None = None  # UNIX time the scanner read the bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "location": self.location,
            "rule_id": self.rule_id,
            "seen_at": self.seen_at,
        }


@dataclass(frozen=True, slots=True)
class LeakVerdict:
    """What the broker did about one reported fingerprint."""

    fingerprint: str
    status: LeakStatus
    lease_id: str | None = None
    agent: str | None = None
    task_id: str | None = None
    engine: str | None = None
    scopes: tuple[str, ...] = ()
    revoked_at: float | None = None
    also_revoked: tuple[str, ...] = ()  # other leases revoked because of on_leak=task|agent

    def to_json(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "status": self.status.value,
            "lease_id": self.lease_id,
            "agent": self.agent,
            "task_id": self.task_id,
            "engine": self.engine,
            "scopes": list(self.scopes),
            "revoked_at": self.revoked_at,
            "also_revoked": list(self.also_revoked),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LeakVerdict:
        return cls(
            fingerprint=str(data["fingerprint"]),
            status=LeakStatus(data["status"]),
            lease_id=data.get("lease_id"),
            agent=data.get("agent"),
            task_id=data.get("task_id"),
            engine=data.get("engine"),
            scopes=tuple(data.get("scopes") or ()),
            revoked_at=data.get("revoked_at"),
            also_revoked=tuple(data.get("also_revoked") or ()),
        )


@dataclass(frozen=True, slots=True)
class FingerprintEntry:
    """A live lease's ``live_lookup`` (never its fingerprint) and when it stops mattering (its expiry)."""

    lookup: str
    expires_at: float


@dataclass(frozen=True, slots=True)
class FingerprintPage:
    entries: tuple[FingerprintEntry, ...]
    next_cursor: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "fingerprints": [{"lookup": e.lookup, "expires_at": e.expires_at} for e in self.entries],
            "next_cursor": self.next_cursor,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FingerprintPage:
        entries = tuple(
            FingerprintEntry(str(e["lookup"]), float(e["expires_at"])) for e in data["fingerprints"]
        )
        return cls(entries, data.get("next_cursor"))
