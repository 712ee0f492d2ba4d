"""``IncidentDesk``: the broker's handling of the fleet's incidents, with no HTTP in it. The API
(``broker.api.incidents``), the CLI and the console call these; the store keeps the records
(``broker.incidents.records``), every change with its audit record.

Scanners send sightings (``ingest``, scanner role); analysts list, read and work incidents (``list``,
``get``, ``act``, ``assign``, ``note``). Scanners obtain the fleet's fingerprint key with
``fleet_key`` so that one secret has one fingerprint on every machine.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Sequence

from jitsec.broker.errors import BadRequest, Conflict, NotFound
from jitsec.broker.incidents.model import (
    STATUS_MOVES,
    FleetIncident,
    IncidentAction,
    IncidentDetail,
    IncidentFilters,
    IncidentPage,
    IngestOutcome,
)
from jitsec.broker.incidents.records import IncidentRecords, clean
from jitsec.broker.metrics import BrokerMetrics

from jitsec.kernel.redaction import shown
from jitsec.kernel.sightings import Sighting

MAX_BATCH = 1000  # sightings per POST /v1/incidents
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
DETAIL_ROWS = 500  # sightings and timeline entries shown in one incident's detail
MAX_NOTE_CHARS = 2000
FLEET_KEY_LABEL = b"jitsec fleet fingerprint key/1"


def derive_fleet_key(secret: bytes) -> bytes:
    """The fleet's fingerprint key, derived from the broker's own secret (every replica of one broker
    derives the same). Rotating that secret changes every fingerprint: incidents then start afresh."""
    return hmac.new(secret, FLEET_KEY_LABEL, hashlib.sha256).digest()


class IncidentDesk:
    """Thread-safe (the state is in the store)."""

    def __init__(self, records: IncidentRecords, *, clock: Callable[[], float] = time.time,
                 fleet_key: bytes | None = None, metrics: BrokerMetrics | None = None) -> None:
        self.records = records
        self.clock = clock
        self._fleet_key = fleet_key
        self.metrics = metrics or BrokerMetrics()

    def fleet_key(self) -> bytes:
        """The key scanners fingerprint with (scanner role only: it lets one test guesses of a secret)."""
        if self._fleet_key is None:
            raise NotFound("this broker has no fleet fingerprint key", code="no_fleet_key")
        return self._fleet_key

    # scanners --------------------------------------------------------------------------------------
    def ingest(self, sightings: Sequence[Sighting], principal: str) -> list[IngestOutcome]:
        """Keep a batch of sightings; one outcome each, in order. Idempotent per sighting id."""
        if not 1 <= len(sightings) <= MAX_BATCH:
            raise BadRequest(f"a batch holds 1 to {MAX_BATCH} sightings, not {len(sightings)}")
        outcomes = self.records.ingest(sightings, principal, self.clock())
        for outcome in outcomes:
            self.metrics.sightings.labels("opened" if outcome.opened else "seen" if outcome.counted
                                          else "known").inc()
        return outcomes

    # analysts --------------------------------------------------------------------------------------
    def list(self, filters: IncidentFilters | None = None, cursor: str | None = None,
             limit: int = DEFAULT_LIMIT) -> IncidentPage:
        """A page of incidents, newest first; pass ``next_cursor`` back for the next one."""
        if not 1 <= limit <= MAX_LIMIT:
            raise BadRequest(f"limit must be between 1 and {MAX_LIMIT}", code="invalid_limit")
        position = None
        if cursor:
            if not cursor.isdigit() or len(cursor) > 19:
                raise BadRequest(f"cursor {shown(cursor)!r} is not one this API gave", code="invalid_cursor")
            position = int(cursor)
        return self.records.page(filters or IncidentFilters(), position, limit)

    def get(self, incident_id: str) -> IncidentDetail | None:
        """The incident with its sightings and timeline (oldest first), or None."""
        incident = self.records.incident(incident_id)
        if incident is None:
            return None
        return IncidentDetail(incident, tuple(self.records.sightings(incident_id, DETAIL_ROWS)),
                              tuple(self.records.timeline(incident_id, DETAIL_ROWS)))

    def act(self, incident_id: str, action: IncidentAction | str, by: str, reason: str = "") -> FleetIncident:
        """Move the status (see ``STATUS_MOVES``); ``Conflict`` when the status does not allow it."""
        try:
            chosen = IncidentAction(action)
        except ValueError:
            names = ", ".join(a.value for a in IncidentAction)
            raise BadRequest(f"action must be one of {names}", code="invalid_action") from None
        move = STATUS_MOVES[chosen]
        changed = self.records.change_status(incident_id, move, by, _text(reason), self.clock())
        if changed is None:
            raise _missing(incident_id)
        after, moved = changed
        if not moved:
            raise Conflict(f"incident {incident_id} is {after.status.value}: cannot {chosen.value} it",
                           code="invalid_transition")
        return after

    def assign(self, incident_id: str, assignee: str | None, by: str) -> FleetIncident:
        """Give the incident to ``assignee`` (None or "": nobody)."""
        name = clean(assignee or "", 128).strip() or None
        after = self.records.assign(incident_id, name, by, self.clock())
        if after is None:
            raise _missing(incident_id)
        return after

    def note(self, incident_id: str, text: str, by: str) -> FleetIncident:
        body = _text(text).strip()
        if not body:
            raise BadRequest("a note needs some text", code="empty_note")
        after = self.records.note(incident_id, body, by, self.clock())
        if after is None:
            raise _missing(incident_id)
        return after


def _text(text: str) -> str:
    if len(text) > MAX_NOTE_CHARS:
        raise BadRequest(f"text above {MAX_NOTE_CHARS} characters", code="text_too_long")
    return clean(text)


def _missing(incident_id: str) -> NotFound:
    return NotFound(f"no incident {shown(incident_id)!r}", code="unknown_incident")
