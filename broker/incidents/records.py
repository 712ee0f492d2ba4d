# ruff: noqa: S608  (SQL text is built from constant column lists, table names and marks only; values are bound)
"""Where incidents are kept: the ``IncidentRecords`` protocol and its one SQL implementation, which
runs inside the broker's own store (SQLite or PostgreSQL) through the store's ``run_write`` and
``run_read``, so that every change commits in ONE transaction with its audit record(s).

Contract (both stores, several broker processes over one database):
- ``ingest`` is idempotent per sighting id: a sighting already kept changes nothing and is not
  counted again. One incident per fingerprint whoever reports it first: the insert of a new incident
  is ``ON CONFLICT (fingerprint) DO NOTHING`` followed by a read of the winner's row, locked
  (``FOR UPDATE`` on PostgreSQL; SQLite writers are serialised anyway) while its counters change.
  A batch is handled in fingerprint order, so two batches over the same incidents lock them in the
  same order and never deadlock.
- ``change_status`` is a compare-and-set on the move's source states (``STATUS_MOVES``).
- Reads never lock; pages are newest first by ``seq`` with ``seq < cursor``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from jitsec.broker.incidents.merge import merged_response, response_of, stronger
from jitsec.broker.incidents.model import (
    FleetIncident,
    IncidentFilters,
    IncidentPage,
    IncidentStatus,
    IngestOutcome,
    SightingRecord,
    StatusMove,
    TimelineEntry,
    TimelineKind,
)
from jitsec.broker.model import AuditEvent, AuditKind

from jitsec.kernel.records import Confidence, ResponseAction, Severity
from jitsec.kernel.sightings import Sighting

T = TypeVar("T")
AuditAppend = Callable[[Sequence[AuditEvent]], None]

INCIDENT_COLUMNS = (
    "incident_id, seq, fingerprint, key_id, rule_id, description, severity, confidence, preview, status, "
    "first_seen, last_seen, sightings, action, lease_id, agent, revoked_at, latency_ms, assignee, "
    "status_by, status_at, status_reason, created_at, updated_at"
)
SIGHTING_COLUMNS = (
    "sighting_id, incident_id, location, source, seen_at, scanner, host, reported_by, received_at, action"
)
TIMELINE_COLUMNS = "at, kind, actor, text"
TEXT_LIMIT = 2000  # notes and reasons; locations are bounded by the API already


class SqlRunner(Protocol):
    """What a store lends the incident records: its transactions and its audit chain."""

    def run_write(self, work: Callable[[Any, AuditAppend], T]) -> T:
        """Run ``work(connection, append_audit)`` in one write transaction (retried whole at most
        once on a dead connection); ``append_audit`` chains events inside that transaction."""
        ...

    def run_read(self, work: Callable[[Any], T]) -> T: ...


class IncidentRecords(Protocol):
    def ingest(self, sightings: Sequence[Sighting], reported_by: str, now: float) -> list[IngestOutcome]:
        """One outcome per sighting, in order (see the module's contract)."""
        ...

    def page(self, filters: IncidentFilters, cursor: int | None, limit: int) -> IncidentPage: ...

    def incident(self, incident_id: str) -> FleetIncident | None: ...

    def sightings(self, incident_id: str, limit: int) -> list[SightingRecord]: ...

    def timeline(self, incident_id: str, limit: int) -> list[TimelineEntry]: ...

    def change_status(self, incident_id: str, move: StatusMove, by: str, reason: str,
                      now: float) -> tuple[FleetIncident, bool] | None:
        """Apply ``move`` if the status is one of its sources: the incident as it is after, and whether
        it moved; None if there is no such incident."""
        ...

    def assign(self, incident_id: str, assignee: str | None, by: str, now: float) -> FleetIncident | None: ...

    def note(self, incident_id: str, text: str, by: str, now: float) -> FleetIncident | None: ...


def clean(text: str, limit: int = TEXT_LIMIT) -> str:
    """Free text kept forever (timeline, audit): printable, bounded."""
    if text.isprintable():  # the usual case, without a pass per character
        return text[:limit]
    return "".join(ch if ch.isprintable() else "?" for ch in text)[:limit]


class IncidentSql:
    """One database's statements. ``mark`` is the placeholder, ``prefix`` the tables' schema,
    ``lock`` what a read that will update appends (`` FOR UPDATE`` where rows lock)."""

    def __init__(self, *, mark: str, prefix: str, lock: str) -> None:
        self.mark = m = mark
        incidents, sightings, timeline = (prefix + t for t in ("incidents", "incident_sightings",
                                                                "incident_timeline"))
        self.incidents, self.sightings_table = incidents, sightings
        self.insert_incident = (
            f"INSERT INTO {incidents} (incident_id, fingerprint, key_id, rule_id, description, severity, "
            "confidence, preview, status, first_seen, last_seen, sightings, action, lease_id, agent, "
            f"revoked_at, latency_ms, created_at, updated_at) VALUES ({self.marks(19)}) "
            f"ON CONFLICT (fingerprint) DO NOTHING RETURNING {INCIDENT_COLUMNS}"
        )
        self.incident_by_fingerprint = (
            f"SELECT {INCIDENT_COLUMNS} FROM {incidents} WHERE fingerprint = {m}{lock}"
        )
        self.incident_by_id = f"SELECT {INCIDENT_COLUMNS} FROM {incidents} WHERE incident_id = {m}"
        self.incident_for_update = self.incident_by_id + lock
        self.insert_sighting = (
            f"INSERT INTO {sightings} ({SIGHTING_COLUMNS}) VALUES ({self.marks(10)}) "
            "ON CONFLICT (sighting_id) DO NOTHING RETURNING sighting_id"
        )
        self.count_sighting = (
            f"UPDATE {incidents} SET sightings = sightings + {m}, first_seen = {m}, last_seen = {m}, "
            f"severity = {m}, action = {m}, lease_id = {m}, agent = {m}, revoked_at = {m}, latency_ms = {m}, "
            f"updated_at = {m} WHERE incident_id = {m}"
        )
        self.set_status = (
            f"UPDATE {incidents} SET status = {m}, status_by = {m}, status_at = {m}, status_reason = {m}, "
            f"updated_at = {m} WHERE incident_id = {m}"
        )
        self.set_assignee = f"UPDATE {incidents} SET assignee = {m}, updated_at = {m} WHERE incident_id = {m}"
        self.touch = f"UPDATE {incidents} SET updated_at = {m} WHERE incident_id = {m}"
        self.insert_timeline = (
            f"INSERT INTO {timeline} (incident_id, {TIMELINE_COLUMNS}) VALUES ({self.marks(5)})"
        )
        self.sightings_of = (
            f"SELECT {SIGHTING_COLUMNS} FROM {sightings} WHERE incident_id = {m} "
            f"ORDER BY seen_at, sighting_id LIMIT {m}"
        )
        self.timeline_of = (
            f"SELECT {TIMELINE_COLUMNS} FROM {timeline} WHERE incident_id = {m} ORDER BY entry LIMIT {m}"
        )

    def marks(self, count: int) -> str:
        return ", ".join([self.mark] * count)

    def page_query(self, filters: IncidentFilters, cursor: int | None, limit: int) -> tuple[str, list[Any]]:
        """The list's statement for these filters (only marks vary with them; values are bound)."""
        m = self.mark
        tests: list[str] = []
        values: list[Any] = []
        for column, chosen in (("status", [s.value for s in filters.status]),
                               ("severity", [s.value for s in filters.severity])):
            if chosen:
                tests.append(f"{column} IN ({self.marks(len(chosen))})")
                values.extend(chosen)
        for column, value in (("rule_id", filters.rule), ("agent", filters.agent),
                              ("assignee", filters.assignee)):
            if value is not None:
                tests.append(f"{column} = {m}")
                values.append(value)
        if filters.since is not None:
            tests.append(f"last_seen >= {m}")
            values.append(filters.since)
        if filters.source is not None:
            tests.append(f"EXISTS (SELECT 1 FROM {self.sightings_table} s WHERE s.incident_id = "
                         f"{self.incidents}.incident_id AND s.source = {m})")
            values.append(filters.source)
        if cursor is not None:
            tests.append(f"seq < {m}")
            values.append(cursor)
        where = f" WHERE {' AND '.join(tests)}" if tests else ""
        values.append(limit + 1)
        return f"SELECT {INCIDENT_COLUMNS} FROM {self.incidents}{where} ORDER BY seq DESC LIMIT {m}", values


def incident_of(row: Sequence[Any]) -> FleetIncident:
    """An incident from a row of ``INCIDENT_COLUMNS``."""
    return FleetIncident(
        incident_id=row[0], seq=int(row[1]), fingerprint=row[2], key_id=row[3], rule_id=row[4],
        description=row[5], severity=Severity(row[6]), confidence=Confidence(row[7]), preview=row[8],
        status=IncidentStatus(row[9]), first_seen=row[10], last_seen=row[11], sightings=int(row[12]),
        action=ResponseAction(row[13]), lease_id=row[14], agent=row[15], revoked_at=row[16],
        latency_ms=row[17], assignee=row[18], status_by=row[19], status_at=row[20], status_reason=row[21],
        created_at=row[22], updated_at=row[23],
    )


def _sighting_of(row: Sequence[Any]) -> SightingRecord:
    return SightingRecord(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8],
                          ResponseAction(row[9]))


class SqlIncidentRecords:
    """``IncidentRecords`` on a store's connections. See the module docstring for the contract."""

    def __init__(self, runner: SqlRunner, sql: IncidentSql, new_id: Callable[[], str]) -> None:
        self._runner, self._sql, self._new_id = runner, sql, new_id

    # writes ----------------------------------------------------------------------------------------
    def ingest(self, sightings: Sequence[Sighting], reported_by: str, now: float) -> list[IngestOutcome]:
        if not sightings:
            return []
        ordered = sorted(range(len(sightings)), key=lambda i: (sightings[i].fingerprint, i))

        def work(conn: Any, append: AuditAppend) -> list[IngestOutcome]:
            outcomes: dict[int, IngestOutcome] = {}
            events: list[AuditEvent] = []
            for index in ordered:
                outcomes[index] = self._one(conn, sightings[index], reported_by, now, events)
            append(events)
            return [outcomes[i] for i in range(len(sightings))]

        return self._runner.run_write(work)

    def _one(self, conn: Any, seen: Sighting, reported_by: str, now: float,
             events: list[AuditEvent]) -> IngestOutcome:
        sql = self._sql
        revoked_at = seen.revoked_at if seen.action is ResponseAction.REVOKED else None
        inserted = conn.execute(sql.insert_incident, (
            self._new_id(), seen.fingerprint, seen.key_id, seen.rule_id, seen.description,
            seen.severity.value, seen.confidence.value, seen.preview, IncidentStatus.OPEN.value,
            seen.seen_at, seen.seen_at, 1, seen.action.value, seen.lease_id, seen.agent, revoked_at,
            seen.latency_ms if revoked_at is not None else None, now, now,
        )).fetchone()
        opened = inserted is not None
        current = incident_of(inserted if opened else
                              conn.execute(sql.incident_by_fingerprint, (seen.fingerprint,)).fetchone())
        counted = conn.execute(sql.insert_sighting, (
            seen.sighting_id, current.incident_id, seen.location, seen.source, seen.seen_at, seen.scanner,
            seen.host, reported_by, now, seen.action.value,
        )).fetchone() is not None
        entries: list[tuple[TimelineKind, str, float]] = []
        if counted:
            kind = TimelineKind.OPENED if opened else TimelineKind.SEEN
            entries.append((kind, f"{seen.source} {seen.location}", seen.seen_at))
        if opened and revoked_at is not None:
            entries.append((TimelineKind.REVOKED, _revoked_text(seen.lease_id, seen.latency_ms), revoked_at))
        elif not opened:
            response = merged_response(current, seen)
            if response.revoked_at is not None and current.revoked_at is None:
                revoked = _revoked_text(response.lease_id, response.latency_ms)
                entries.append((TimelineKind.REVOKED, revoked, response.revoked_at))
            if counted or response != response_of(current):  # a late outcome of a known sighting too
                conn.execute(sql.count_sighting, (
                    1 if counted else 0, min(current.first_seen, seen.seen_at),
                    max(current.last_seen, seen.seen_at), stronger(current.severity, seen.severity).value,
                    response.action.value, response.lease_id, response.agent, response.revoked_at,
                    response.latency_ms, now, current.incident_id,
                ))
        actor = f"{seen.scanner}@{seen.host}"
        for entry_kind, text, at in entries:
            conn.execute(sql.insert_timeline, (current.incident_id, at, entry_kind.value, actor, clean(text)))
            events.append(AuditEvent(
                kind=AuditKind.INCIDENT, at=now, principal=reported_by, agent=seen.agent or "",
                lease_id=seen.lease_id or "", resource=current.incident_id,
                detail=clean(f"{entry_kind.value}: rule {seen.rule_id}; {text}; by {actor}", 500),
            ))
        return IngestOutcome(seen.sighting_id, current.incident_id, opened, counted)

    def change_status(self, incident_id: str, move: StatusMove, by: str, reason: str,
                      now: float) -> tuple[FleetIncident, bool] | None:
        def work(conn: Any, append: AuditAppend) -> tuple[FleetIncident, bool] | None:
            row = conn.execute(self._sql.incident_for_update, (incident_id,)).fetchone()
            if row is None:
                return None
            current = incident_of(row)
            if current.status not in move.sources:
                return current, False
            conn.execute(self._sql.set_status, (move.target.value, by, now, clean(reason) or None, now,
                                                incident_id))
            text = f"{current.status.value} -> {move.target.value}" + (f": {clean(reason)}" if reason else "")
            self._log(conn, append, incident_id, kind=TimelineKind.STATUS, by=by, text=text, now=now)
            return incident_of(conn.execute(self._sql.incident_by_id, (incident_id,)).fetchone()), True

        return self._runner.run_write(work)

    def assign(self, incident_id: str, assignee: str | None, by: str, now: float) -> FleetIncident | None:
        def work(conn: Any, append: AuditAppend) -> FleetIncident | None:
            if conn.execute(self._sql.incident_for_update, (incident_id,)).fetchone() is None:
                return None
            conn.execute(self._sql.set_assignee, (assignee, now, incident_id))
            text = f"assigned to {assignee}" if assignee else "unassigned"
            self._log(conn, append, incident_id, kind=TimelineKind.ASSIGNED, by=by, text=text, now=now)
            return incident_of(conn.execute(self._sql.incident_by_id, (incident_id,)).fetchone())

        return self._runner.run_write(work)

    def note(self, incident_id: str, text: str, by: str, now: float) -> FleetIncident | None:
        def work(conn: Any, append: AuditAppend) -> FleetIncident | None:
            if conn.execute(self._sql.incident_for_update, (incident_id,)).fetchone() is None:
                return None
            conn.execute(self._sql.touch, (now, incident_id))
            self._log(conn, append, incident_id, kind=TimelineKind.NOTE, by=by, text=text, now=now)
            return incident_of(conn.execute(self._sql.incident_by_id, (incident_id,)).fetchone())

        return self._runner.run_write(work)

    def _log(self, conn: Any, append: AuditAppend, incident_id: str, *, kind: TimelineKind, by: str,
             text: str, now: float) -> None:
        conn.execute(self._sql.insert_timeline, (incident_id, now, kind.value, by, clean(text)))
        append([AuditEvent(kind=AuditKind.INCIDENT, at=now, principal=by, resource=incident_id,
                           detail=clean(f"{kind.value}: {text}", 500))])

    # reads -----------------------------------------------------------------------------------------
    def page(self, filters: IncidentFilters, cursor: int | None, limit: int) -> IncidentPage:
        query, values = self._sql.page_query(filters, cursor, limit)
        rows = self._runner.run_read(lambda conn: conn.execute(query, values).fetchall())
        items = tuple(incident_of(row) for row in rows[:limit])
        return IncidentPage(items, str(items[-1].seq) if len(rows) > limit else None)

    def incident(self, incident_id: str) -> FleetIncident | None:
        query = self._sql.incident_by_id
        row = self._runner.run_read(lambda conn: conn.execute(query, (incident_id,)).fetchone())
        return incident_of(row) if row is not None else None

    def sightings(self, incident_id: str, limit: int) -> list[SightingRecord]:
        rows = self._runner.run_read(lambda conn: conn.execute(self._sql.sightings_of, (incident_id, limit))
                                     .fetchall())
        return [_sighting_of(row) for row in rows]

    def timeline(self, incident_id: str, limit: int) -> list[TimelineEntry]:
        rows = self._runner.run_read(lambda conn: conn.execute(self._sql.timeline_of, (incident_id, limit))
                                     .fetchall())
        return [TimelineEntry(row[0], TimelineKind(row[1]), row[2], row[3]) for row in rows]


def _revoked_text(lease_id: str | None, latency_ms: float | None) -> str:
    text = f"lease {lease_id or '?'} revoked"
    return text + (f" {latency_ms:.0f} ms after the leak was read" if latency_ms is not None else "")
