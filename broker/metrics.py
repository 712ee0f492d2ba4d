"""Prometheus metrics of one broker instance, on its own registry (no process-global state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest


class BrokerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        reg = self.registry
        self.issued = Counter("jitsec_broker_issued_total", "Secrets issued", ["engine"], registry=reg)
        self.denied = Counter(
            "jitsec_broker_denied_total", "Requests refused by policy or validation", ["reason"], registry=reg
        )
        self.revoked = Counter("jitsec_broker_revoked_total", "Leases revoked", ["reason"], registry=reg)
        self.revoke_retries = Counter(
            "jitsec_broker_revoke_retries_total", "Revocation attempts to retry", registry=reg
        )
        self.revoke_failures = Counter(
            "jitsec_broker_revoke_failures_total",
            "Leases whose revocation failed for good (alerted)",
            registry=reg,
        )
        self.replays = Counter(
            "jitsec_broker_grant_replays_total", "Grants presented again after redemption", registry=reg
        )
        self.replay_tasks_ended = Counter(
            "jitsec_broker_grant_replay_tasks_ended_total",
            "Tasks ended because their grant was presented again (on_grant_replay = end-task)",
            registry=reg,
        )
        self.introspections = Counter(
            "jitsec_broker_introspections_total", "Introspection calls", ["active"], registry=reg
        )
        self.reaper_passes = Counter(
            "jitsec_broker_reaper_passes_total", "Reaper passes that revoked at least one lease", registry=reg
        )
        self.sightings = Counter(
            "jitsec_broker_incident_sightings_total",
            "Sightings scanners sent: opened (a new incident), seen (another place), known (sent before)",
            ["outcome"],
            registry=reg,
        )
        self.reaper_lateness = Histogram(
            "jitsec_broker_reaper_lateness_seconds",
            "Revocation time minus expiry time for expired leases",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 30.0, 300.0),
            registry=reg,
        )

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
