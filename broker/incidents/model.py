"""The broker's incident records: one ``FleetIncident`` per leaked secret across the fleet, the
sightings that make it, and the timeline of what was done about it. Frozen, typed, no plaintext.

Status moves (``STATUS_MOVES``), each with who, when and why::

    open ──ack──> acknowledged ──resolve / false_positive──> resolved | false_positive
      └───────────── resolve / false_positive ──────────────┘              │
    open <────────────────────────── reopen ─────────────────────────────────┘ (also from acknowledged)

Times are UNIX seconds (UTC), as everywhere in the broker.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from jitsec.kernel.records import Confidence, ResponseAction, Severity


class IncidentStatus(Enum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    FALSE_POSITIVE = "false_positive"


class IncidentAction(Enum):
    """What an analyst may do to an incident's status."""

    ACK = "ack"
    RESOLVE = "resolve"
    REOPEN = "reopen"
    FALSE_POSITIVE = "false_positive"


@dataclass(frozen=True, slots=True)
class StatusMove:
    sources: frozenset[IncidentStatus]
    target: IncidentStatus


_OPEN, _ACKED = IncidentStatus.OPEN, IncidentStatus.ACKNOWLEDGED
_CLOSED = frozenset({IncidentStatus.RESOLVED, IncidentStatus.FALSE_POSITIVE})
STATUS_MOVES: dict[IncidentAction, StatusMove] = {
    IncidentAction.ACK: StatusMove(frozenset({_OPEN}), _ACKED),
    IncidentAction.RESOLVE: StatusMove(frozenset({_OPEN, _ACKED}), IncidentStatus.RESOLVED),
    IncidentAction.FALSE_POSITIVE: StatusMove(frozenset({_OPEN, _ACKED}), IncidentStatus.FALSE_POSITIVE),
    IncidentAction.REOPEN: StatusMove(_CLOSED | {_ACKED}, _OPEN),
}


class TimelineKind(Enum):
    """One entry of an incident's timeline (each is also an ``incident`` record in the audit chain)."""

    OPENED = "opened"  # first sighting anywhere in the fleet
    SEEN = "seen"  # a further sighting (another place, another scanner)
    REVOKED = "revoked"  # the broker revoked the leaked credential (from a sighting's response)
    STATUS = "status"  # an analyst's ack / resolve / reopen / false_positive
    ASSIGNED = "assigned"
    NOTE = "note"


@dataclass(frozen=True, slots=True)
class FleetIncident:
    """One secret, however many machines saw it, keyed by its fleet fingerprint (``fingerprint``,
    an HMAC under the key ``key_id`` names; never the secret). ``preview`` is redacted.

    ``action``..``latency_ms`` are the broker's side: what the response did about the secret, when
    the credential was revoked and how long after it was read. ``status_*`` say who moved the status
    last, when and why.
    """

    incident_id: str
    seq: int  # insertion order in the store: the list's order and cursor
    fingerprint: str
    key_id: str
    rule_id: str
    description: str
    severity: Severity
    confidence: Confidence
    preview: str
    status: IncidentStatus
    first_seen: float
    last_seen: float
    sightings: int
    action: ResponseAction
    lease_id: str | None = None
    agent: str | None = None
    revoked_at: float | None = None
    latency_ms: float | None = None
    assignee: str | None = None
    status_by: str | None = None
    status_at: float | None = None
    status_reason: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0


@dataclass(frozen=True, slots=True)
class SightingRecord:
    """A sighting as the broker keeps it: where, when, which scanner on which host, reported by whom."""

    sighting_id: str
    incident_id: str
    location: str
    source: str
    seen_at: float
    scanner: str
    host: str
    reported_by: str  # the scanner principal that sent it
    received_at: float
    action: ResponseAction


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    at: float
    kind: TimelineKind
    by: str  # a principal, or "scanner@host" for sightings
    text: str  # free text, bounded, no secret (a location, a reason, a note)


@dataclass(frozen=True, slots=True)
class IncidentDetail:
    incident: FleetIncident
    sightings: tuple[SightingRecord, ...]
    timeline: tuple[TimelineEntry, ...]


@dataclass(frozen=True, slots=True)
class IncidentFilters:
    """``GET /v1/incidents`` filters; an empty field filters nothing. ``since``: last seen at or after."""

    status: tuple[IncidentStatus, ...] = ()
    severity: tuple[Severity, ...] = ()
    rule: str | None = None
    agent: str | None = None
    source: str | None = None
    since: float | None = None
    assignee: str | None = None


@dataclass(frozen=True, slots=True)
class IncidentPage:
    """Incidents newest first and the cursor for the next page (None at the end)."""

    items: tuple[FleetIncident, ...]
    next_cursor: str | None = None


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    """What one sighting did: ``counted`` False when it was already known (a retry or a duplicate)."""

    sighting_id: str
    incident_id: str
    opened: bool
    counted: bool
