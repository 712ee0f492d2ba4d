"""The responder: ``on_findings`` for ``scanner.pipeline.run_sources``, closing the leak loop.

Per chunk, in the pipeline's thread:

1. Every finding whose ``credential_sha256`` is set (a broker-format candidate with a valid checksum,
   or a candidate the live-fingerprint cache confirmed) and which is not merely heuristic is reported
   to the broker, fingerprint only, in one ``POST /v1/leaks`` batch.
2. Confidence tiers decide: a broker verdict ``revoked`` is a critical incident with the measured
   latency from ``read_at`` to the broker's answer; ``dead`` a low one; ``unknown`` an alert. A
   checksummed third-party format is raised to at least HIGH; a generic or entropy hit is an alert
   and never revokes anything.
3. One incident per secret (``IncidentBook``); versions worth sending go to every sink (spooled).
   The book is saved in ``state_dir/incidents.sqlite`` (``IncidentStore``): after a chunk that sent
   an alert, on every tick and on close, so a restart continues the same incidents.

The broker unreachable: the batch goes to a durable outbox (a ``Spool`` on disk) and is retried in
order with backoff; the incident says ``pending`` meanwhile and is updated when the broker answers.
While the outbox holds anything, new batches queue behind it (order kept, no per-chunk timeouts).
When ``respond`` returns, everything about the chunk is durable (answered, or on disk), so the
caller may acknowledge the chunk to its source then.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from jitsec.connectors.sinks.spool import Backoff, PermanentDeliveryError, Spool
from jitsec.kernel.leaks import LeakReport, LeakScope, LeakStatus, LeakVerdict
from jitsec.kernel.ports import LeakReporter, Sink
from jitsec.kernel.records import (
    BrokerStatus,
    Chunk,
    Confidence,
    Finding,
    Incident,
    ResponseAction,
    Severity,
    describe_origin,
)
from jitsec.kernel.schemas import FINDING
from jitsec.response.fleet import FleetReporter
from jitsec.response.incident_store import FILE_NAME as INCIDENTS_FILE
from jitsec.response.incident_store import IncidentStore
from jitsec.response.incidents import ALERT_ONLY, IncidentBook, IncidentPolicy, Resolution
from jitsec.response.live_cache import LiveFingerprintCache

log = logging.getLogger(__name__)

_STATUS = {
    LeakStatus.REVOKED: (ResponseAction.REVOKED, BrokerStatus.REVOKED),
    LeakStatus.PENDING: (ResponseAction.PENDING, BrokerStatus.REVOKED),
    LeakStatus.FAILED: (ResponseAction.IRREVOCABLE, None),
    # live, and the broker refused to revoke it for this scanner (its revocation budget is spent):
    # to the analyst, as to a failed revocation, a live credential to revoke by hand
    LeakStatus.REFUSED: (ResponseAction.IRREVOCABLE, None),
    LeakStatus.DEAD: (ResponseAction.ALREADY_DEAD, BrokerStatus.DEAD),
    LeakStatus.UNKNOWN: (ResponseAction.ALERT_ONLY, BrokerStatus.UNKNOWN),
}
MAX_REMEMBERED = 100_000
_SEVERITY_RANK = {Severity.LOW: 0, Severity.MEDIUM: 1, Severity.HIGH: 2, Severity.CRITICAL: 3}
_RETRYABLE_STATUS = {401, 403, 408, 425, 429}  # auth can be fixed by an operator: keep waiting


@dataclass(frozen=True, slots=True)
class ResponderSettings:
    on_leak: LeakScope | None = None  # None: the broker's default (revoke the leaked lease only)
    incidents: IncidentPolicy = field(default_factory=IncidentPolicy)
    tick_seconds: float = 1.0  # how often deferred incident updates are checked
    outbox_backoff: Backoff = field(default_factory=lambda: Backoff(initial=0.1, maximum=2.0))
    persist_incidents: bool = True  # keep the incident book in state_dir across restarts


def location_of(finding: Finding) -> str:
    return f"{describe_origin(finding.origin)}:{finding.line}"


def _is_permanent(error: Exception) -> bool:
    status = getattr(error, "status_code", None) or getattr(error, "status", None)
    return isinstance(status, int) and 400 <= status < 500 and status not in _RETRYABLE_STATUS


def _is_reportable(finding: Finding) -> bool:
    return finding.credential_sha256 is not None and finding.confidence is not Confidence.HEURISTIC


class Responder:
    """Thread-safe ``on_findings`` handler. Owns the sinks it is given (closes them on ``close``)."""

    def __init__(
        self,
        sinks: Sequence[Sink],
        *,
        broker: LeakReporter | None,
        state_dir: Path | str,
        settings: ResponderSettings | None = None,
        live_cache: LiveFingerprintCache | None = None,
        book: IncidentBook | None = None,
        rules_digest: str = "",
        wall_clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings or ResponderSettings()
        if book is None:
            store = (IncidentStore(Path(state_dir) / INCIDENTS_FILE, clock=wall_clock)
                     if self.settings.persist_incidents else None)
            book = IncidentBook(self.settings.incidents, clock=wall_clock, rules_digest=rules_digest,
                                store=store)
        self.incidents = book
        self._sinks = tuple(sinks)
        self._broker = broker
        self._cache = live_cache
        self._wall = wall_clock
        self._mono = monotonic
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._outbox: Spool | None = None
        self._final: dict[str, LeakVerdict] = {}
        self.fleet: FleetReporter | None = None  # set when a broker keeps the fleet's incidents
        if broker is not None:
            self._outbox = Spool(Path(state_dir) / "leak-outbox.sqlite", self._deliver_outboxed,
                                 name="leak-outbox", backoff=self.settings.outbox_backoff)
        self._ticker = threading.Thread(target=self._tick, name="incident-ticker", daemon=True)
        self._ticker.start()

    # -- the handler ---------------------------------------------------------------------------------

    def __call__(self, chunk: Chunk, findings: Sequence[Finding]) -> None:
        self.respond(chunk, findings)

    def respond(self, chunk: Chunk | None, findings: Sequence[Finding]) -> list[Finding]:
        """Handle one chunk's findings; returns them with ``broker`` set. Durable when it returns.

        ``chunk`` only supplies ``read_at`` for findings without one; None is fine (``jitsec scan``
        hands over findings without their chunk)."""
        if not findings:
            return []
        reportable = [f for f in findings if _is_reportable(f)]
        verdicts: dict[str, LeakVerdict] = {}
        answered_at: float | None = None
        out: list[Finding] = []
        sent = False
        with self._lock:  # one chunk at a time, and never interleaved with a late outbox answer
            if reportable and self._broker is not None:
                verdicts, answered_at = self._report(chunk, reportable)
            sightings = []
            for finding in findings:
                resolution, status = self._resolution(chunk, finding, verdicts, answered_at)
                seen_at = self._wall_time_of(_read_at(finding, chunk))
                incident = self.incidents.record(_alerting(finding), location_of(finding), resolution,
                                                 seen_at=seen_at)
                sent = sent or incident is not None
                self._send(incident)
                out.append(replace(finding, broker=status))
                if self.fleet is not None:
                    sightings.append(self.fleet.sighting(_alerting(finding), location_of(finding), resolution,
                                                         seen_at))
            if self.fleet is not None:  # durable in the outbox before the chunk is acknowledged
                self.fleet.report(sightings)
        if sent:  # what was alerted is saved before the chunk is acknowledged; mere counts wait for the tick
            self.incidents.flush()
        return out

    def _resolution(self, chunk: Chunk | None, finding: Finding, verdicts: dict[str, LeakVerdict],
                    answered_at: float | None) -> tuple[Resolution, BrokerStatus | None]:
        if not _is_reportable(finding):
            return ALERT_ONLY, None
        if self._broker is None:
            return Resolution(ResponseAction.ALERT_ONLY, BrokerStatus.UNKNOWN), BrokerStatus.UNKNOWN
        assert finding.credential_sha256 is not None
        verdict = verdicts.get(finding.credential_sha256)
        if verdict is None:  # outboxed: the broker will answer later
            return Resolution(ResponseAction.PENDING), None
        read_at = _read_at(finding, chunk)
        latency = None
        if verdict.status is LeakStatus.REVOKED and read_at is not None and answered_at is not None:
            latency = round((answered_at - read_at) * 1000, 3)
        resolution = _resolution_of(verdict, latency)
        return resolution, resolution.broker

    def _report(self, chunk: Chunk | None,
                findings: Sequence[Finding]) -> tuple[dict[str, LeakVerdict], float | None]:
        """Ask the broker now, or spool the batch when it is unreachable (call with the lock held)."""
        assert self._broker is not None and self._outbox is not None
        known = {f.credential_sha256: self._final[f.credential_sha256] for f in findings
                 if f.credential_sha256 in self._final}
        findings = [f for f in findings if f.credential_sha256 not in known]
        if not findings:
            return known, None
        reports = self._reports(chunk, findings)
        if self._outbox.stats().pending == 0:
            try:
                verdicts = self._broker.report_leaks(reports, on_leak=self.settings.on_leak)
                answered_at = self._mono()
                self._remember(verdicts)
                return {**known, **{v.fingerprint: v for v in verdicts}}, answered_at
            except Exception as error:
                log.warning("broker unreachable, %d leak report(s) spooled for retry: %s",
                            len(reports), _describe(error))
        self._outbox.put(self._outbox_payload(reports, findings))
        return known, None

    def _reports(self, chunk: Chunk | None, findings: Sequence[Finding]) -> list[LeakReport]:
        seen: dict[str, LeakReport] = {}
        for finding in findings:
            assert finding.credential_sha256 is not None
            if finding.credential_sha256 not in seen:
                seen[finding.credential_sha256] = LeakReport(
                    finding.credential_sha256, location_of(finding), finding.rule_id,
                    self._wall_time_of(_read_at(finding, chunk)))
        return list(seen.values())

    def _wall_time_of(self, monotonic_at: float | None) -> float:
        now_wall = self._wall()
        return now_wall if monotonic_at is None else now_wall - (self._mono() - monotonic_at)

    # -- outbox (broker unreachable) --------------------------------------------------------------------

    def _outbox_payload(self, reports: Sequence[LeakReport], findings: Sequence[Finding]) -> bytes:
        items = [FINDING.to_dict(finding) for finding in findings]
        return json.dumps({"reports": [r.to_json() for r in reports], "findings": items}).encode()

    def _deliver_outboxed(self, payload: bytes) -> None:
        data = json.loads(payload)
        reports = [LeakReport(r["fingerprint"], r["location"], r["rule_id"], r["seen_at"])
                   for r in data["reports"]]
        seen_at = {r.fingerprint: r.seen_at for r in reports}
        assert self._broker is not None
        try:
            verdicts = {v.fingerprint: v for v in self._broker.report_leaks(reports,
                                                                             on_leak=self.settings.on_leak)}
        except Exception as error:
            if _is_permanent(error):
                raise PermanentDeliveryError(_describe(error)) from None
            raise
        answered_wall = self._wall()
        self._remember(verdicts.values())
        with self._lock:
            self._resolve_outboxed([FINDING.from_dict(item) for item in data["findings"]], verdicts, seen_at,
                                   answered_wall)
        self.incidents.flush()

    def _resolve_outboxed(self, findings: list[Finding], verdicts: dict[str, LeakVerdict],
                          seen_at: dict[str, float | None], answered_wall: float) -> None:
        for finding in findings:
            verdict = verdicts.get(finding.credential_sha256 or "")
            if verdict is None:
                continue
            seen = seen_at.get(verdict.fingerprint)
            latency = None
            if verdict.status is LeakStatus.REVOKED and seen is not None:
                latency = round((answered_wall - seen) * 1000, 3)
            resolution = _resolution_of(verdict, latency)
            self._send(self.incidents.resolve(finding, location_of(finding), resolution))
            if self.fleet is not None:  # the broker's incident learns the late outcome
                self.fleet.report([self.fleet.sighting(_alerting(finding), location_of(finding), resolution,
                                                       seen if seen is not None else answered_wall)])

    def _remember(self, verdicts: Iterable[LeakVerdict]) -> None:
        """Final verdicts are remembered: a credential the broker revoked or found dead stays dead,
        and one it does not know was never issued by it (leases exist before their secret can
        leak). Later sightings are answered locally without asking again, so a token repeated in
        every log line costs one report (bounded memory; forgetting only costs a report)."""
        for verdict in verdicts:
            if verdict.status in (LeakStatus.REVOKED, LeakStatus.DEAD, LeakStatus.UNKNOWN):
                if len(self._final) >= MAX_REMEMBERED:
                    self._final.clear()
                final = LeakStatus.UNKNOWN if verdict.status is LeakStatus.UNKNOWN else LeakStatus.DEAD
                self._final[verdict.fingerprint] = replace(verdict, status=final)
                if self._cache is not None and final is LeakStatus.DEAD:
                    self._cache.discard(verdict.fingerprint)

    # -- sinks ------------------------------------------------------------------------------------

    def _send(self, incident: Incident | None) -> None:
        if incident is None:
            return
        for sink in self._sinks:
            try:
                sink.send(incident)
            except Exception as error:  # one broken sink must not stop the others or the scan
                log.error("sink %s refused an incident: %s", getattr(sink, "name", sink), _describe(error))

    def _tick(self) -> None:
        while not self._closed.wait(self.settings.tick_seconds):
            for incident in self.incidents.due():
                self._send(incident)
            self.incidents.flush()  # write-behind: a crash loses at most this tick's count updates

    def outbox_pending(self) -> int:
        return 0 if self._outbox is None else self._outbox.stats().pending

    def wait_outbox(self, timeout: float) -> bool:
        """Wait until every spooled leak report was answered (tests, demo, orderly shutdown)."""
        return True if self._outbox is None else self._outbox.wait_empty(timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Flush deferred incident updates to the sinks, stop the outbox (what is left stays on disk
        for the next run), save and close the incident book, then close the sinks."""
        if self._closed.is_set():
            return
        self._closed.set()
        self._ticker.join(timeout=2)
        if self._outbox is not None:
            self._outbox.close(timeout)
        for incident in self.incidents.pending():
            self._send(incident)
        self.incidents.close()
        if self.fleet is not None:
            self.fleet.close(timeout)
        for sink in self._sinks:
            sink.close(timeout)


def _read_at(finding: Finding, chunk: Chunk | None) -> float | None:
    """Monotonic time the finding's bytes were read, if anyone noted it."""
    if finding.read_at is not None:
        return finding.read_at
    return chunk.read_at if chunk is not None else None


def _alerting(finding: Finding) -> Finding:
    """The tier decides the alert: a checksummed format outside the broker's is at least HIGH."""
    if (finding.confidence is Confidence.STRUCTURAL and finding.credential_sha256 is None
            and _SEVERITY_RANK[finding.severity] < _SEVERITY_RANK[Severity.HIGH]):
        return replace(finding, severity=Severity.HIGH)
    return finding


def _resolution_of(verdict: LeakVerdict, latency_ms: float | None) -> Resolution:
    action, status = _STATUS[verdict.status]
    return Resolution(action, status, lease_id=verdict.lease_id, agent=verdict.agent, task=verdict.task_id,
                      scopes=verdict.scopes, revoked_at=verdict.revoked_at, latency_ms=latency_ms)


def _describe(error: Exception) -> str:
    """Errors here never carry a secret (only fingerprints were sent); keep them short anyway."""
    return f"{type(error).__name__}: {str(error)[:200]}"
