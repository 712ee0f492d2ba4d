"""One incident per secret, however often it is seen: counting, sampling and deciding when to re-send.

Keyed by the finding's keyed fingerprint. Each sighting bumps the count, ``last_seen`` and (up to
``max_locations``) the sample of distinct locations. An incident version is emitted for sending:

- on the first sighting;
- at once when what was done changes (action, broker status, lease): e.g. pending → revoked;
- otherwise, for sightings only, at most once per ``resend_interval`` seconds per incident: the
  sighting marks the incident dirty and ``due()`` (called on a timer) emits it when the interval
  since its last send has passed.

So two million sightings of one secret cost one dict update each and at most one alert per
interval, never two million alerts. The book is bounded: beyond ``max_incidents`` the least recently
seen incident is forgotten (a later sighting opens a new incident id).

With an ``IncidentStore`` (optional), the book starts from the incidents saved by the previous run and
``flush()`` writes what changed since the last flush in one transaction (write-behind: the responder
calls it on its timer tick, after a chunk that sent an alert, and on close). A restart then continues
the same incidents (same id, count, first sighting, resolution, re-send clock) instead of alerting
again on an old leak. Eviction removes the incident from the file too.

A sighting is counted once: the book remembers a short key per sighting (keyed fingerprint, location,
column and the masked line's hash; ``sighting_key``), the last ``max_sightings`` of them, saved with
the incidents. A source that reads a line again (a tail restarted without a checkpoint, a Kafka
consumer re-reading uncommitted records, ``jitsec scan`` over an unchanged tree) neither counts it
nor sends a new version for it; a changed outcome on such a line is still applied.

A paired secret (an AWS secret key with its key id beside it; ``scanner.pairs``) is one finding and so
one incident; ``related`` names its other half (rule, redacted preview, location), bounded like the
locations.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TypedDict

from jitsec.kernel.records import BrokerStatus, Finding, Incident, ResponseAction, Severity, describe_origin
from jitsec.response.incident_store import IncidentStore, IncidentStoreError, StoredIncident

log = logging.getLogger(__name__)

_SEVERITY_ORDER = (Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL)


@dataclass(frozen=True, slots=True)
class IncidentPolicy:
    max_locations: int = 10
    resend_interval: float = 60.0
    max_incidents: int = 100_000
    max_sightings: int = 100_000  # sighting keys remembered (about 100 bytes each) to ignore re-reads


@dataclass(frozen=True, slots=True)
class Resolution:
    """What the response did about one sighting's secret (from the broker, or alert only)."""

    action: ResponseAction
    broker: BrokerStatus | None = None
    lease_id: str | None = None
    agent: str | None = None
    task: str | None = None
    scopes: tuple[str, ...] = ()
    revoked_at: float | None = None
    latency_ms: float | None = None


ALERT_ONLY = Resolution(ResponseAction.ALERT_ONLY)


def sighting_key(finding: Finding, location: str) -> int:
    """A 64-bit key naming one sighting: the same secret at the same place on the same line text.

    The line's ``context`` hash tells a line read again (same key) from new text written at the
    same place after a rotation (another key). Built from non-secret fields only."""
    text = f"{finding.fingerprint}\0{location}\0{finding.column}\0{finding.context}".encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big", signed=True)


def related_of(finding: Finding) -> tuple[str, ...]:
    """The paired halves of a finding as an incident names them: rule, redacted preview, location
    (``aws-access-key-id AKIA…(20 chars) at creds.txt:2``)."""
    where = describe_origin(finding.origin)
    return tuple(f"{partner.rule_id} {partner.preview} at {where}:{partner.line}"
                 for partner in finding.related)


def resolution_of(incident: Incident) -> Resolution:
    """The resolution an incident carries (inverse of ``_resolution_fields``): how a reloaded
    incident resumes merging, so a saved "revoked" is never downgraded after a restart."""
    return Resolution(incident.action, incident.broker, incident.lease_id, incident.agent, incident.task,
                      incident.scopes, incident.revoked_at, incident.latency_ms)


def _merge(current: Resolution, new: Resolution) -> Resolution:
    """The resolution an incident keeps. Our own revocation echoing back as "dead" on the next
    sighting must not downgrade "revoked"; an alert-only sighting never hides a broker outcome."""
    if new.action is ResponseAction.ALERT_ONLY and current.action is not ResponseAction.ALERT_ONLY:
        return current
    if current.action is ResponseAction.REVOKED and new.action is not ResponseAction.REVOKED:
        return current
    if current.action is ResponseAction.REVOKED:  # revoked twice (e.g. two leases): keep the first
        return current
    merged = new
    if new.lease_id is None and current.lease_id is not None:
        merged = replace(new, lease_id=current.lease_id, agent=current.agent, task=current.task,
                         scopes=current.scopes)
    return merged


def _severity(finding: Finding, resolution: Resolution, current: Severity | None) -> Severity:
    if resolution.action is ResponseAction.ALREADY_DEAD:
        return Severity.LOW  # a dead broker credential harms no one; still worth knowing it leaked
    if resolution.action is ResponseAction.IRREVOCABLE:
        return Severity.CRITICAL
    candidates = [finding.severity] + ([current] if current else [])
    return max(candidates, key=_SEVERITY_ORDER.index)


@dataclass(slots=True)
class _Entry:
    incident: Incident
    resolution: Resolution
    sent_at: float
    dirty: bool = False
    touched: float = 0.0  # clock time of the last sighting (saved: orders eviction after a restart)


class IncidentBook:
    """Thread-safe. ``record`` and ``due`` return the incident versions to hand to the sinks."""

    def __init__(
        self,
        policy: IncidentPolicy | None = None,
        *,
        clock: Callable[[], float] = time.time,
        new_id: Callable[[], str] = lambda: "inc_" + secrets.token_hex(8),
        rules_digest: str = "",
        store: IncidentStore | None = None,
    ) -> None:
        self.policy = policy or IncidentPolicy()
        self._clock = clock
        self._new_id = new_id
        self._rules_digest = rules_digest
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._dirty: set[str] = set()  # fingerprints with a deferred update (so due() is not O(all))
        self._lock = threading.Lock()
        self._store = store
        self._unsaved: set[str] = set()  # changed since the last flush (only with a store)
        self._forgotten: set[str] = set()  # evicted since the last flush: delete from the store
        self._flush_lock = threading.Lock()  # flushes in order, never two at once
        self._sightings: OrderedDict[int, None] = OrderedDict()  # oldest first, bounded
        self._new_sightings: list[int] = []  # remembered since the last flush (only with a store)
        if store is not None:
            self._load(store)

    @property
    def store(self) -> IncidentStore | None:
        return self._store

    def _load(self, store: IncidentStore) -> None:
        for saved in store.load(self.policy.max_incidents):
            fingerprint = saved.incident.fingerprint
            self._entries[fingerprint] = _Entry(
                saved.incident, resolution_of(saved.incident), sent_at=saved.sent_at, dirty=saved.unsent,
                touched=saved.touched)
            if saved.unsent:
                self._dirty.add(fingerprint)
        self._sightings.update((key, None) for key in store.load_sightings(self.policy.max_sightings))

    def flush(self) -> int:
        """Save every incident changed since the last flush, and forget evicted ones, in one
        transaction; returns how many were written. Without a store, does nothing. A failed save is
        logged and retried by the next flush (the changes stay marked); it never raises."""
        if self._store is None:
            return 0
        with self._flush_lock:
            with self._lock:
                rows = [self._stored(self._entries[fp]) for fp in self._unsaved if fp in self._entries]
                forget = list(self._forgotten)
                sightings = self._new_sightings[-self.policy.max_sightings:]  # older ones are forgotten
                self._new_sightings = []
                self._unsaved.clear()
                self._forgotten.clear()
            try:
                self._store.save(rows, forget, sightings, keep_sightings=self.policy.max_sightings)
            except IncidentStoreError as error:
                log.error("%s; %d incident change(s) kept in memory for the next flush", error, len(rows))
                with self._lock:
                    self._unsaved.update(r.incident.fingerprint for r in rows
                                         if r.incident.fingerprint in self._entries)
                    self._forgotten.update(fp for fp in forget if fp not in self._entries)
                    self._new_sightings[:0] = sightings
                return 0
            return len(rows)

    def close(self) -> None:
        """Flush and close the store (if any). The book stays readable in memory."""
        if self._store is not None:
            self.flush()
            self._store.close()

    @staticmethod
    def _stored(entry: _Entry) -> StoredIncident:
        return StoredIncident(entry.incident, entry.sent_at, entry.dirty, entry.touched)

    def _changed(self, fingerprint: str) -> None:
        if self._store is not None:
            self._unsaved.add(fingerprint)

    def __len__(self) -> int:
        return len(self._entries)

    def snapshot(self) -> list[Incident]:
        """The current state of every incident held (for summaries and benchmarks)."""
        with self._lock:
            return [entry.incident for entry in self._entries.values()]

    def get(self, fingerprint: str) -> Incident | None:
        with self._lock:
            entry = self._entries.get(fingerprint)
            return entry.incident if entry else None

    def record(self, finding: Finding, location: str, resolution: Resolution = ALERT_ONLY, *,
               seen_at: float | None = None) -> Incident | None:
        """Count one sighting (read at UNIX time ``seen_at``, default now); return the incident
        version to send now, or None (update deferred). A sighting already counted (the same line
        read again) only applies a changed resolution, like ``resolve``."""
        now = self._clock()
        seen = now if seen_at is None else seen_at
        key = sighting_key(finding, location)
        with self._lock:
            entry = self._entries.get(finding.fingerprint)
            known = key in self._sightings
            if not known:
                self._remember(key)
            if entry is None:
                return self._open(finding, location, resolution, now, seen)
            if known:
                return self._apply(entry, finding, resolution, now)
            self._entries.move_to_end(finding.fingerprint)
            entry.touched = now
            self._changed(finding.fingerprint)
            old = entry.incident
            merged = _merge(entry.resolution, resolution)
            locations = old.locations
            if location not in locations and len(locations) < self.policy.max_locations:
                locations = (*locations, location)
            related = old.related
            for partner in related_of(finding):
                if partner not in related and len(related) < self.policy.max_locations:
                    related = (*related, partner)
            changed = (merged.action, merged.broker, merged.lease_id) != (
                entry.resolution.action, entry.resolution.broker, entry.resolution.lease_id)
            entry.resolution = merged
            entry.incident = replace(
                old,
                occurrences=old.occurrences + 1,
                last_seen=max(old.last_seen, seen),
                locations=locations,
                related=related,
                severity=_severity(finding, merged, old.severity),
                **_resolution_fields(merged),
            )
            if changed or now - entry.sent_at >= self.policy.resend_interval:
                return self._emit(entry, now)
            entry.dirty = True
            self._dirty.add(finding.fingerprint)
            return None

    def resolve(self, finding: Finding, location: str, resolution: Resolution) -> Incident | None:
        """Apply a late broker outcome (e.g. pending → revoked) without counting a sighting.

        ``finding`` and ``location`` open the incident if this book never saw it (a restart between
        the sighting and the broker's answer). Returns the version to send, or None if nothing changed.
        """
        now = self._clock()
        with self._lock:
            entry = self._entries.get(finding.fingerprint)
            if entry is None:
                return self._open(finding, location, resolution, now, now)
            return self._apply(entry, finding, resolution, now)

    def _apply(self, entry: _Entry, finding: Finding, resolution: Resolution, now: float) -> Incident | None:
        """Merge an outcome without counting a sighting; the version to send if it changed."""
        merged = _merge(entry.resolution, resolution)
        if merged == entry.resolution:
            return None
        self._changed(finding.fingerprint)
        entry.resolution = merged
        entry.incident = replace(entry.incident, severity=_severity(finding, merged, None),
                                 **_resolution_fields(merged))
        return self._emit(entry, now)

    def _remember(self, key: int) -> None:
        self._sightings[key] = None
        if len(self._sightings) > self.policy.max_sightings:
            self._sightings.popitem(last=False)
        if self._store is not None:
            self._new_sightings.append(key)

    def due(self) -> list[Incident]:
        """Deferred updates whose re-send interval has passed (call every second or so)."""
        now = self._clock()
        with self._lock:
            ready = [fp for fp in self._dirty if fp in self._entries
                     and now - self._entries[fp].sent_at >= self.policy.resend_interval]
            return [self._emit(self._entries[fp], now) for fp in ready]

    def pending(self) -> list[Incident]:
        """Every deferred update regardless of the interval (a final flush before exit)."""
        now = self._clock()
        with self._lock:
            ready = [fp for fp in self._dirty if fp in self._entries]
            return [self._emit(self._entries[fp], now) for fp in ready]

    def _open(self, finding: Finding, location: str, resolution: Resolution, now: float,
              seen: float) -> Incident:
        incident = Incident(
            incident_id=self._new_id(),
            version=1,
            fingerprint=finding.fingerprint,
            rule_id=finding.rule_id,
            description=finding.description,
            severity=_severity(finding, resolution, None),
            confidence=finding.confidence,
            preview=finding.preview,
            occurrences=1,
            first_seen=seen,
            last_seen=seen,
            locations=(location,),
            related=related_of(finding),
            rules_digest=self._rules_digest,
            **_resolution_fields(resolution),
        )
        self._entries[finding.fingerprint] = _Entry(incident, resolution, sent_at=now, touched=now)
        self._changed(finding.fingerprint)
        while len(self._entries) > self.policy.max_incidents:
            forgotten, _ = self._entries.popitem(last=False)
            self._dirty.discard(forgotten)
            if self._store is not None:
                self._unsaved.discard(forgotten)
                self._forgotten.add(forgotten)
        return incident

    def _emit(self, entry: _Entry, now: float) -> Incident:
        entry.incident = replace(entry.incident, version=entry.incident.version + 1)
        entry.sent_at = now
        entry.dirty = False
        self._dirty.discard(entry.incident.fingerprint)
        self._changed(entry.incident.fingerprint)
        return entry.incident


class _ResolutionFields(TypedDict):
    """The fields an incident takes from its resolution (keyword arguments of ``Incident``)."""

    action: ResponseAction
    broker: BrokerStatus | None
    lease_id: str | None
    agent: str | None
    task: str | None
    scopes: tuple[str, ...]
    revoked_at: float | None
    latency_ms: float | None


def _resolution_fields(resolution: Resolution) -> _ResolutionFields:
    return {
        "action": resolution.action,
        "broker": resolution.broker,
        "lease_id": resolution.lease_id,
        "agent": resolution.agent,
        "task": resolution.task,
        "scopes": resolution.scopes,
        "revoked_at": resolution.revoked_at,
        "latency_ms": resolution.latency_ms,
    }
