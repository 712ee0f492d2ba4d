"""What a running ``jitsec watch`` daemon tells its operators: ``/healthz`` and Prometheus ``/metrics``.

Counters are updated on the scanning thread as chunks and findings pass; values that live in the
sources (errors by kind, consumer lag) are read at scrape time by a collector, so they are never
stale and never copied. Each daemon has its own registry (no process-wide default registry).
Metric names and labels never carry secrets: rule ids, source addresses and error kinds only.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from jitsec.connectors.sinks.base import SinkStatus
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from jitsec.kernel.ports import Source, SourceErrors
from jitsec.kernel.records import BrokerStatus, Chunk, Finding


class DaemonMetrics:
    """The daemon's metrics in one registry."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.clock = clock
        self.started = clock()
        self.last_chunk_at: float | None = None
        self.bytes_scanned = Counter(
            "jitsec_bytes_scanned", "Bytes read from sources and scanned", ["source"], registry=self.registry
        )
        self.chunks = Counter("jitsec_chunks", "Chunks scanned", ["source"], registry=self.registry)
        self.findings = Counter("jitsec_findings", "Findings, by rule", ["rule"], registry=self.registry)
        self.revocations = Counter(
            "jitsec_revocations", "Broker credentials revoked because of a finding", registry=self.registry
        )
        self.sink_status: Callable[[], Sequence[SinkStatus]] = lambda: ()

    def count_batch(self, source: str, chunks: Sequence[Chunk]) -> None:
        """A batch read from ``source``: counted once, not chunk by chunk (a Kafka poll is hundreds)."""
        if not chunks:
            return
        self.chunks.labels(source).inc(len(chunks))
        self.bytes_scanned.labels(source).inc(sum([len(chunk.data) for chunk in chunks]))
        self.last_chunk_at = self.clock()

    def count_findings(self, findings: Sequence[Finding]) -> None:
        for finding in findings:
            self.findings.labels(finding.rule_id).inc()
            if finding.broker is BrokerStatus.REVOKED:
                self.revocations.inc()

    def watch_sources(
        self, sources: Sequence[tuple[str, Source]], incidents: Callable[[], int] | None = None
    ) -> None:
        """Expose the sources' error counts and lag, and the incident count, read at scrape time."""
        self.registry.register(_SourceCollector(sources, incidents))

    def watch_sinks(self, status: Callable[[], Sequence[SinkStatus]],
                    wall_clock: Callable[[], float] = time.time) -> None:
        """Expose the alert sinks' queues and failures (read at scrape time) and let ``/healthz``
        answer ``degraded`` while one is failing."""
        self.sink_status = status
        self.registry.register(_SinkCollector(status, wall_clock))


class _SourceCollector:
    def __init__(self, sources: Sequence[tuple[str, Source]], incidents: Callable[[], int] | None) -> None:
        self.sources = list(sources)
        self.incidents = incidents

    def describe(self) -> Iterable[Metric]:
        return []  # unchecked: the label sets are only known at scrape time

    def collect(self) -> Iterator[Metric]:
        errors = CounterMetricFamily(
            "jitsec_source_errors", "Problems sources stepped over, by kind", labels=["source", "kind"]
        )
        lag = GaugeMetricFamily(
            "jitsec_consumer_lag", "Bytes or records not yet read, where a source can tell", labels=["source"]
        )
        for name, source in self.sources:
            counts: SourceErrors = source.errors
            for kind, count in sorted(counts.counts.items()):
                errors.add_metric([name, kind], count)
            measure = getattr(source, "lag", None)
            value = measure() if callable(measure) else None
            if isinstance(value, int | float):
                lag.add_metric([name], value)
        yield errors
        yield lag
        if self.incidents is not None:
            incidents = GaugeMetricFamily("jitsec_incidents", "Open incidents (one per leaked secret)")
            incidents.add_metric([], self.incidents())
            yield incidents


class _SinkCollector:
    def __init__(self, status: Callable[[], Sequence[SinkStatus]], wall_clock: Callable[[], float]) -> None:
        self.status = status
        self.wall_clock = wall_clock

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily("jitsec_alert_queue_depth", "Alerts spooled, not yet delivered",
                                  labels=["sink"])
        oldest = GaugeMetricFamily("jitsec_alert_oldest_undelivered_seconds",
                                   "Age of the oldest alert waiting in a sink's spool (0: none)",
                                   labels=["sink"])
        failures = CounterMetricFamily("jitsec_alert_delivery_failures", "Failed delivery attempts",
                                       labels=["sink"])
        delivered = CounterMetricFamily("jitsec_alert_delivered", "Alerts delivered", labels=["sink"])
        dead = GaugeMetricFamily("jitsec_alert_dead", "Alerts a receiver refused for good (set aside)",
                                 labels=["sink"])
        failing = GaugeMetricFamily("jitsec_alert_sink_failing", "1 while a sink's last delivery failed",
                                    labels=["sink"])
        now = self.wall_clock()
        for status in self.status():
            stats = status.stats
            depth.add_metric([status.name], stats.pending)
            age = 0.0 if stats.oldest_queued_at is None else max(0.0, now - stats.oldest_queued_at)
            oldest.add_metric([status.name], round(age, 3))
            failures.add_metric([status.name], stats.failures)
            delivered.add_metric([status.name], stats.delivered)
            dead.add_metric([status.name], stats.dead)
            failing.add_metric([status.name], 1 if stats.failing else 0)
        yield from (depth, oldest, failures, delivered, dead, failing)


class HealthServer:
    """``GET /healthz`` and ``GET /metrics`` on one port. ``/healthz`` answers 200 with ``status``
    ``ok``, or ``degraded`` while an alert sink is failing (alerts wait in its spool: the scanner
    itself is fine, a restart would not help), and 503 ``stopping`` once shutting down. ``sinks``
    lists each sink's queue depth, failing flag and last error."""

    def __init__(self, metrics: DaemonMetrics, host: str, port: int) -> None:
        self.metrics = metrics
        self.stopping = threading.Event()
        handler = _handler_for(self)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="health-http", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        self._thread.start()

    def health(self) -> tuple[int, dict[str, object]]:
        now = self.metrics.clock()
        last = self.metrics.last_chunk_at
        sinks = list(self.metrics.sink_status())
        degraded = any(status.stats.failing for status in sinks)
        body: dict[str, object] = {
            "status": "stopping" if self.stopping.is_set() else "degraded" if degraded else "ok",
            "uptime_seconds": round(now - self.metrics.started, 3),
            "seconds_since_last_chunk": None if last is None else round(now - last, 3),
            "sinks": {status.name: {"failing": status.stats.failing, "queued": status.stats.pending,
                                    "last_error": status.stats.last_error if status.stats.failing else None}
                      for status in sinks},
        }
        return (503 if self.stopping.is_set() else 200), body

    def close(self) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()


def _handler_for(server: HealthServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/healthz":
                status, body = server.health()
                self._reply(status, "application/json", json.dumps(body).encode())
            elif self.path == "/metrics":
                self._reply(200, CONTENT_TYPE_LATEST, generate_latest(server.metrics.registry))
            else:
                self._reply(404, "text/plain", b"not found\n")

        def _reply(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Scrapes are not worth a log line."""

    return Handler
