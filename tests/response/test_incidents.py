from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from jitsec.kernel.records import BrokerStatus, Confidence, FileOrigin, Finding, ResponseAction, Severity
from jitsec.response.incidents import ALERT_ONLY, IncidentBook, IncidentPolicy, Resolution
from jitsec.testing import ManualClock


def finding(fingerprint: str = "hmac-sha256:aa", severity: Severity = Severity.CRITICAL) -> Finding:
    return Finding(
        rule_id="jitsec-engine-token", origin=FileOrigin("/log"), line=1, column=1, offset=0,
        preview="jit_abcd…(50 chars)", fingerprint=fingerprint, severity=severity,
        confidence=Confidence.STRUCTURAL, credential_sha256="00" * 32,
    )


REVOKED = Resolution(ResponseAction.REVOKED, BrokerStatus.REVOKED, lease_id="l1", agent="a", task="t",
                     revoked_at=1000.1, latency_ms=40.0)
DEAD = Resolution(ResponseAction.ALREADY_DEAD, BrokerStatus.DEAD, lease_id="l1")
PENDING = Resolution(ResponseAction.PENDING, None)


def test_the_first_sighting_opens_an_incident_and_is_sent() -> None:
    book = IncidentBook(clock=ManualClock(1000.0))
    incident = book.record(finding(), "/log:1", REVOKED)
    assert incident is not None
    assert (incident.version, incident.occurrences, incident.action) == (1, 1, ResponseAction.REVOKED)
    assert incident.latency_ms == 40.0 and incident.lease_id == "l1"


def test_sightings_are_counted_but_re_sent_at_most_once_per_interval() -> None:
    clock = ManualClock(1000.0)
    book = IncidentBook(IncidentPolicy(resend_interval=60), clock=clock)
    book.record(finding(), "/log:1", REVOKED)
    sent = [book.record(finding(), f"/log:{n}", DEAD) for n in range(2, 10_002)]
    assert all(incident is None for incident in sent)
    assert book.due() == []
    clock.now += 61
    [update] = book.due()
    assert update.occurrences == 10_001 and update.version == 2
    assert update.action is ResponseAction.REVOKED  # our own revocation echoing as "dead" keeps it
    assert len(update.locations) == 10  # bounded sample
    assert book.due() == []
    assert len(book) == 1


def test_an_action_change_is_sent_at_once() -> None:
    book = IncidentBook(clock=ManualClock(1000.0))
    first = book.record(finding(), "/log:1", PENDING)
    assert first is not None and first.action is ResponseAction.PENDING
    second = book.record(replace(finding(), column=30), "/log:1", REVOKED)  # same line, another copy
    assert second is not None and second.action is ResponseAction.REVOKED and second.version == 2
    assert second.occurrences == 2 and second.locations == ("/log:1",)


def test_a_dead_credential_is_low_severity() -> None:
    book = IncidentBook(clock=ManualClock(1000.0))
    incident = book.record(finding(), "/log:1", DEAD)
    assert incident is not None and incident.severity is Severity.LOW
    assert incident.action is ResponseAction.ALREADY_DEAD


def test_an_alert_only_sighting_never_hides_a_broker_outcome() -> None:
    book = IncidentBook(IncidentPolicy(resend_interval=0), clock=ManualClock(1000.0))
    book.record(finding(), "/a", REVOKED)
    later = book.record(finding(), "/b", ALERT_ONLY)
    assert later is not None and later.action is ResponseAction.REVOKED


def test_the_book_is_bounded() -> None:
    book = IncidentBook(IncidentPolicy(max_incidents=3), clock=ManualClock(1000.0))
    for number in range(10):
        book.record(finding(f"fp{number}"), "/log")
    assert len(book) == 3
    assert book.get("fp9") is not None and book.get("fp0") is None


def test_pending_flushes_every_deferred_update() -> None:
    book = IncidentBook(clock=ManualClock(1000.0))
    book.record(finding(), "/a:1")
    book.record(finding(), "/a:2")
    [flushed] = book.pending()
    assert flushed.occurrences == 2
    assert book.pending() == []


@given(st.lists(st.sampled_from([ALERT_ONLY, PENDING, DEAD, REVOKED]), min_size=1, max_size=30))
def test_versions_grow_and_occurrences_are_exact(resolutions: list[Resolution]) -> None:
    clock = ManualClock(1000.0)
    book = IncidentBook(IncidentPolicy(resend_interval=5), clock=clock)
    sent = []
    for line, resolution in enumerate(resolutions):
        clock.now += 1
        incident = book.record(finding(), f"/log:{line}", resolution)
        if incident is not None:
            sent.append(incident)
    sent.extend(book.pending())
    assert [incident.version for incident in sent] == list(range(1, len(sent) + 1))
    assert sent[-1].occurrences == len(resolutions)
    if REVOKED in resolutions:
        assert sent[-1].action is ResponseAction.REVOKED
    assert all(replace(incident, version=0).fingerprint == "hmac-sha256:aa" for incident in sent)
