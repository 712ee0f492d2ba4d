"""The incident records contract (``broker.incidents.records``), on every store: SQLite on a temporary
file and PostgreSQL on a database of its own (the real server). Several store objects over one file
or database stand for several broker processes."""

from __future__ import annotations

import threading

from jitsec.broker.audit import verify
from jitsec.broker.incidents.model import (
    STATUS_MOVES,
    IncidentAction,
    IncidentFilters,
    IncidentStatus,
    TimelineKind,
)
from jitsec.broker.model import AuditKind
from jitsec.broker.store.base import Store

from jitsec.kernel.records import Confidence, ResponseAction, Severity
from jitsec.kernel.sightings import Sighting, sighting_id
from tests.broker.test_store_contract import KEY, NOW, Backend, backend

Stores = Backend
stores = backend  # several store objects over one file or database: ``stores.open()`` each


def a_sighting(secret_no: int = 1, location: str = "app/config.env:3", *, host: str = "host-a",
               scanner: str = "watch", source: str = "file", seen_at: float = NOW,
               severity: Severity = Severity.HIGH, action: ResponseAction = ResponseAction.ALERT_ONLY,
               **changes: object) -> Sighting:
    fingerprint = f"hmac-sha256:{secret_no:064x}"
    values: dict[str, object] = dict(
        sighting_id=sighting_id(fingerprint, source, location, host), fingerprint=fingerprint,
        key_id="0123456789abcdef", rule_id="github-pat", description="GitHub token", severity=severity,
        confidence=Confidence.STRUCTURAL, preview="ghp_…[redacted]", location=location, source=source,
        seen_at=seen_at, scanner=scanner, host=host, action=action,
    )
    values.update(changes)
    return Sighting(**values)  # type: ignore[arg-type]


def test_one_incident_per_fingerprint_and_each_sighting_counted_once(stores: Stores) -> None:
    store = stores.open()
    first = store.incidents.ingest([a_sighting(), a_sighting(location="b.env:1", seen_at=NOW + 5)],
                                   "scanner-1", NOW)
    again = store.incidents.ingest([a_sighting(location="b.env:1", seen_at=NOW + 5)], "scanner-1", NOW + 9)

    assert [(o.opened, o.counted) for o in first] == [(True, True), (False, True)]
    assert first[0].incident_id == first[1].incident_id == again[0].incident_id
    assert (again[0].opened, again[0].counted) == (False, False)
    incident = store.incidents.incident(first[0].incident_id)
    assert incident is not None
    assert (incident.sightings, incident.first_seen, incident.last_seen) == (2, NOW, NOW + 5)
    assert incident.status is IncidentStatus.OPEN
    kinds = [entry.kind for entry in store.incidents.timeline(incident.incident_id, 10)]
    assert kinds == [TimelineKind.OPENED, TimelineKind.SEEN]


def test_severity_rises_and_a_revocation_is_kept_with_its_latency(stores: Stores) -> None:
    store = stores.open()
    store.incidents.ingest([a_sighting(severity=Severity.LOW)], "scanner-1", NOW)
    revoked = a_sighting(location="kafka:logs/0@7", source="kafka", severity=Severity.CRITICAL,
                         action=ResponseAction.REVOKED, lease_id="lse_1", agent="demo-agent",
                         revoked_at=NOW + 1, latency_ms=120.5)
    later_alert = a_sighting(location="kafka:logs/0@9", source="kafka", severity=Severity.MEDIUM)
    (outcome, _) = store.incidents.ingest([revoked, later_alert], "scanner-2", NOW + 2)

    incident = store.incidents.incident(outcome.incident_id)
    assert incident is not None
    assert incident.severity is Severity.CRITICAL
    assert (incident.action, incident.lease_id, incident.agent) == (
        ResponseAction.REVOKED, "lse_1", "demo-agent")
    assert (incident.revoked_at, incident.latency_ms) == (NOW + 1, 120.5)
    timeline = store.incidents.timeline(outcome.incident_id, 10)
    assert [e.kind for e in timeline].count(TimelineKind.REVOKED) == 1


def test_status_moves_follow_the_table_and_say_who_and_why(stores: Stores) -> None:
    store = stores.open()
    (outcome,) = store.incidents.ingest([a_sighting()], "scanner-1", NOW)
    incident_id = outcome.incident_id

    acked = store.incidents.change_status(incident_id, STATUS_MOVES[IncidentAction.ACK], "ana", "", NOW + 1)
    twice = store.incidents.change_status(incident_id, STATUS_MOVES[IncidentAction.ACK], "bob", "", NOW + 2)
    resolved = store.incidents.change_status(incident_id, STATUS_MOVES[IncidentAction.RESOLVE], "ana",
                                             "rotated at the provider", NOW + 3)
    missing = store.incidents.change_status("inc_nope", STATUS_MOVES[IncidentAction.ACK], "ana", "", NOW)

    assert acked is not None and acked[1] and acked[0].status is IncidentStatus.ACKNOWLEDGED
    assert twice is not None and not twice[1] and twice[0].status_by == "ana"
    assert resolved is not None and resolved[1]
    assert (resolved[0].status, resolved[0].status_by, resolved[0].status_reason) == (
        IncidentStatus.RESOLVED, "ana", "rotated at the provider")
    assert missing is None


def test_every_change_is_in_the_audit_chain(stores: Stores) -> None:
    store = stores.open()
    (outcome,) = store.incidents.ingest([a_sighting()], "scanner-1", NOW)
    store.incidents.assign(outcome.incident_id, "ana", "lead", NOW + 1)
    store.incidents.note(outcome.incident_id, "token belonged to the CI bot", "ana", NOW + 2)
    store.incidents.change_status(outcome.incident_id, STATUS_MOVES[IncidentAction.FALSE_POSITIVE], "ana",
                                  "test fixture", NOW + 3)

    records = store.audit_records()
    verify(KEY, records)
    incident_events = [r.event for r in records if r.event.kind is AuditKind.INCIDENT]
    assert [e.resource for e in incident_events] == [outcome.incident_id] * 4
    assert [e.principal for e in incident_events] == ["scanner-1", "lead", "ana", "ana"]
    assert "test fixture" in incident_events[-1].detail


def test_pages_are_newest_first_filtered_and_complete(stores: Stores) -> None:
    store = stores.open()
    batch = [a_sighting(n, severity=Severity.CRITICAL if n % 3 == 0 else Severity.LOW,
                        source="kafka" if n % 2 else "file", seen_at=NOW + n) for n in range(1, 31)]
    store.incidents.ingest(batch, "scanner-1", NOW)

    seen, cursor = [], None
    while True:
        page = store.incidents.page(IncidentFilters(severity=(Severity.CRITICAL,)), cursor, 4)
        seen.extend(page.items)
        if page.next_cursor is None:
            break
        cursor = int(page.next_cursor)
    by_source = store.incidents.page(IncidentFilters(source="kafka", since=NOW + 20), None, 100)

    assert [i.seq for i in seen] == sorted((i.seq for i in seen), reverse=True)
    assert sorted(int(i.fingerprint[-8:], 16) for i in seen) == list(range(3, 31, 3))
    assert sorted(int(i.fingerprint[-8:], 16) for i in by_source.items) == [21, 23, 25, 27, 29]


def test_two_processes_racing_on_one_secret_make_one_incident_counting_each_sighting_once(
        stores: Stores) -> None:
    replicas = [stores.open(), stores.open()]
    sightings = [a_sighting(n % 5, location=f"logs/{n}", host=f"host-{n % 2}") for n in range(40)]
    errors: list[BaseException] = []

    def report(store: Store, offset: int) -> None:
        try:
            for start in range(offset, len(sightings), 4):
                store.incidents.ingest(sightings[start:start + 4] + sightings[:2], "scanner", NOW)
        except BaseException as error:  # pragma: no cover - shown by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=report, args=(replicas[i % 2], i * 2)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    page = replicas[0].incidents.page(IncidentFilters(), None, 100)
    assert len(page.items) == 5
    assert sum(i.sightings for i in page.items) == len({s.sighting_id for s in sightings})
    verify(KEY, replicas[1].audit_records(0, 10_000))


def test_a_known_sighting_sent_again_with_its_revocation_updates_without_counting(stores: Stores) -> None:
    store = stores.open()
    pending = a_sighting(action=ResponseAction.PENDING)
    store.incidents.ingest([pending], "scanner-1", NOW)
    revoked = a_sighting(action=ResponseAction.REVOKED, lease_id="lse_9", revoked_at=NOW + 3,
                         latency_ms=900.0)

    (outcome,) = store.incidents.ingest([revoked], "scanner-1", NOW + 4)

    incident = store.incidents.incident(outcome.incident_id)
    assert incident is not None and not outcome.counted
    assert (incident.sightings, incident.action, incident.revoked_at) == (1, ResponseAction.REVOKED, NOW + 3)
    assert [e.kind for e in store.incidents.timeline(outcome.incident_id, 10)] == [
        TimelineKind.OPENED, TimelineKind.REVOKED]
