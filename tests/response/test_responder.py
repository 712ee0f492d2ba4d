"""The responder's decisions, with a small in-process broker stand-in (the real broker over HTTP is in
test_loop_end_to_end.py)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from jitsec.connectors.sinks.spool import Backoff

from jitsec.kernel.leaks import LeakReport, LeakScope, LeakStatus, LeakVerdict
from jitsec.kernel.records import (
    BrokerStatus,
    Chunk,
    Confidence,
    FileOrigin,
    Finding,
    ResponseAction,
    Severity,
)
from jitsec.response.incidents import IncidentPolicy
from jitsec.response.responder import Responder, ResponderSettings
from jitsec.testing import CollectingSink

FAST = ResponderSettings(incidents=IncidentPolicy(resend_interval=3600), tick_seconds=0.05,
                         outbox_backoff=Backoff(0.01, 0.05))


class Desk:
    """Answers like the broker: the first report of a live fingerprint revokes it."""

    def __init__(self, live: set[str]) -> None:
        self.live = set(live)
        self.dead: set[str] = set()
        self.calls: list[list[str]] = []
        self.up = threading.Event()
        self.up.set()

    def report_leaks(self, reports: Sequence[LeakReport], *,
                     on_leak: LeakScope | None = None) -> list[LeakVerdict]:
        if not self.up.is_set():
            raise ConnectionError("broker down")
        self.calls.append([r.fingerprint for r in reports])
        out = []
        for report in reports:
            if report.fingerprint in self.live:
                self.live.discard(report.fingerprint)
                self.dead.add(report.fingerprint)
                out.append(LeakVerdict(report.fingerprint, LeakStatus.REVOKED, lease_id="lse_1", agent="a",
                                       task_id="t", revoked_at=1.0))
            elif report.fingerprint in self.dead:
                out.append(LeakVerdict(report.fingerprint, LeakStatus.DEAD, lease_id="lse_1"))
            else:
                out.append(LeakVerdict(report.fingerprint, LeakStatus.UNKNOWN))
        return out




SHA = "ab" * 32


def finding(sha: str | None = SHA, confidence: Confidence = Confidence.STRUCTURAL,
            severity: Severity = Severity.CRITICAL, fingerprint: str = "hmac-sha256:1",
            line: int = 3) -> Finding:
    return Finding(rule_id="jitsec-engine-token", origin=FileOrigin("/log"), line=line, column=1, offset=0,
                   preview="jit_abcd…(50 chars)", fingerprint=fingerprint, severity=severity,
                   confidence=confidence, credential_sha256=sha, broker=BrokerStatus.UNKNOWN, read_at=10.0)


def chunk() -> Chunk:
    return Chunk(b"...", FileOrigin("/log"), read_at=10.0)


def responder(tmp_path: Path, desk: Desk | None, sink: CollectingSink, now: list[float]) -> Responder:
    return Responder([sink], broker=desk, state_dir=tmp_path, settings=FAST,
                     monotonic=lambda: now[0], wall_clock=lambda: 1_700_000_000.0 + now[0])


def test_a_live_broker_credential_is_revoked_with_its_latency(tmp_path: Path) -> None:
    desk, sink, now = Desk({SHA}), CollectingSink(), [10.25]
    handler = responder(tmp_path, desk, sink, now)
    [out] = handler.respond(chunk(), [finding()])
    handler.close()
    assert out.broker is BrokerStatus.REVOKED
    [incident] = sink.incidents
    assert incident.action is ResponseAction.REVOKED and incident.lease_id == "lse_1"
    assert incident.latency_ms == 250.0
    assert incident.locations == ("/log:3",)


def test_seen_again_is_one_incident_with_two_occurrences(tmp_path: Path) -> None:
    desk, sink, now = Desk({SHA}), CollectingSink(), [10.1]
    handler = responder(tmp_path, desk, sink, now)
    handler.respond(chunk(), [finding()])
    [again] = handler.respond(chunk(), [finding(line=4)])
    handler.close()
    assert again.broker is BrokerStatus.DEAD
    assert desk.calls == [[SHA]]  # the second sighting was answered locally
    assert {i.incident_id for i in sink.incidents} == {sink.incidents[0].incident_id}
    assert sink.incidents[-1].occurrences == 2
    assert sink.incidents[-1].action is ResponseAction.REVOKED


def test_a_heuristic_hit_is_never_reported_and_never_revokes(tmp_path: Path) -> None:
    desk, sink = Desk({SHA}), CollectingSink()
    handler = responder(tmp_path, desk, sink, [10.0])
    generic = finding(sha=None, confidence=Confidence.HEURISTIC, severity=Severity.MEDIUM)
    [out] = handler.respond(chunk(), [generic])
    handler.close()
    assert desk.calls == [] and out.broker is None
    assert sink.incidents[0].action is ResponseAction.ALERT_ONLY


def test_a_checksummed_third_party_format_is_a_high_alert(tmp_path: Path) -> None:
    sink = CollectingSink()
    handler = responder(tmp_path, Desk(set()), sink, [10.0])
    handler.respond(chunk(), [finding(sha=None, severity=Severity.MEDIUM)])
    handler.close()
    assert sink.incidents[0].severity is Severity.HIGH
    assert sink.incidents[0].action is ResponseAction.ALERT_ONLY


def test_without_a_broker_broker_format_hits_are_unknown(tmp_path: Path) -> None:
    sink = CollectingSink()
    handler = responder(tmp_path, None, sink, [10.0])
    [out] = handler.respond(chunk(), [finding()])
    handler.close()
    assert out.broker is BrokerStatus.UNKNOWN
    assert sink.incidents[0].action is ResponseAction.ALERT_ONLY


def test_broker_down_reports_wait_on_disk_and_the_incident_follows(tmp_path: Path) -> None:
    desk, sink = Desk({SHA}), CollectingSink()
    desk.up.clear()
    handler = responder(tmp_path, desk, sink, [10.0])
    [out] = handler.respond(chunk(), [finding()])
    assert out.broker is None
    assert sink.incidents[0].action is ResponseAction.PENDING
    assert handler.outbox_pending() == 1
    second = "cd" * 32
    desk.live.add(second)
    handler.respond(chunk(), [finding(sha=second, fingerprint="hmac-sha256:2")])
    assert handler.outbox_pending() == 2  # queued behind the first, in order
    desk.up.set()
    assert handler.wait_outbox(10)
    handler.close()
    assert desk.calls == [[SHA], [second]]
    final = {i.fingerprint: i for i in sink.incidents}
    assert final["hmac-sha256:1"].action is ResponseAction.REVOKED
    assert final["hmac-sha256:2"].action is ResponseAction.REVOKED


def test_a_restart_delivers_the_spooled_reports(tmp_path: Path) -> None:
    desk, sink = Desk({SHA}), CollectingSink()
    desk.up.clear()
    first = responder(tmp_path, desk, sink, [10.0])
    first.respond(chunk(), [finding()])
    first.close(timeout=0.05)
    desk.up.set()
    later = CollectingSink()
    second = responder(tmp_path, desk, later, [10.0])
    assert second.wait_outbox(10)
    second.close()
    assert desk.calls == [[SHA]]
    assert later.incidents[-1].action is ResponseAction.REVOKED


def test_an_unknown_broker_format_token_is_asked_about_once(tmp_path: Path) -> None:
    desk, sink = Desk(set()), CollectingSink()
    handler = responder(tmp_path, desk, sink, [10.0])
    outs = [handler.respond(chunk(), [finding(line=line)])[0] for line in range(5)]
    handler.close()
    assert desk.calls == [[SHA]]
    assert {out.broker for out in outs} == {BrokerStatus.UNKNOWN}
    assert sink.incidents[-1].occurrences == 5 and sink.incidents[-1].action is ResponseAction.ALERT_ONLY
