"""``jitsec watch``: follow sources until stopped, scanning what they add and responding to leaks.

``jitsec watch SOURCE...`` follows files (like ``tail -F``), directory trees, stdin, Kafka topics and
Elasticsearch indices (``connectors.address``); ``jitsec watch --config FILE`` runs the same as a
daemon described by a TOML file, with ``/healthz`` and Prometheus ``/metrics``.

Shutdown (SIGINT, SIGTERM, or ``--exit-when-idle`` seconds without new data) closes every source, so
each commits the offsets and checkpoints of what the pipeline acknowledged; chunks still in flight
are scanned and handled first. Exit codes: 0 stopped by a signal (a supervisor's stop is clean) or
nothing found, 1 findings when it ended by itself (idle, end of input), 2 could not run.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO, cast

import click

from jitsec.commands.response_options import response_options
from jitsec.connectors.address import SourceAddressError, open_source
from jitsec.connectors.daemon_config import DaemonConfig, DaemonConfigError, load_daemon_config
from jitsec.connectors.sinks.base import SinkStatus
from jitsec.connectors.sources.git import GitStats
from jitsec.connectors.telemetry import DaemonMetrics, HealthServer
from jitsec.kernel.ports import Source, SourceErrors, Stage
from jitsec.kernel.records import Chunk, Finding
from jitsec.pipeline.builder import (
    Pipeline,
    PipelineSettings,
    PipelineSetupError,
    RuleSettings,
    build_pipeline,
    load_rules,
)
from jitsec.pipeline.ignores import IgnoreSetupError, exclude_skip
from jitsec.pipeline.runner import PipelineStats
from jitsec.pipeline.stages import Callback
from jitsec.response.options import ResponseOptions
from jitsec.scanner.output import FORMATS, FindingWriter, Format

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


class MeteredSource:
    """A source that counts what passes (chunks, bytes, last activity) for metrics and idleness."""

    def __init__(self, name: str, source: Source, metrics: DaemonMetrics) -> None:
        self.name = name
        self.source = source
        self.metrics = metrics

    @property
    def errors(self) -> SourceErrors:
        return self.source.errors

    def batches(self) -> Iterator[Sequence[Chunk]]:
        for batch in self.source.batches():
            self.metrics.count_batch(self.name, batch)
            yield batch

    def acknowledge(self, chunk: Chunk) -> None:
        self.source.acknowledge(chunk)

    def close(self) -> None:
        self.source.close()

    def lag(self) -> float | None:
        return self.source.lag()


class Watch:
    """One run: sources → pipeline (baseline, first seen, response, then metrics and writer) until
    stopped."""

    def __init__(
        self,
        sources: Sequence[MeteredSource],
        *,
        metrics: DaemonMetrics,
        idle_timeout: float | None = None,
        writer: FindingWriter | None = None,
    ) -> None:
        self.sources = list(sources)
        self.writer = writer
        self.metrics = metrics
        self.idle_timeout = idle_timeout
        self.stop_event = threading.Event()
        self.findings = 0
        self.stopped_by = "end of input"

    @property
    def stopped_by_signal(self) -> bool:
        return self.stopped_by in ("SIGINT", "SIGTERM")

    def stop(self, reason: str) -> None:
        """Stop following; safe from signal handlers and other threads, idempotent."""
        if self.stop_event.is_set():
            return
        self.stopped_by = reason
        self.stop_event.set()
        for source in self.sources:
            source.close()

    def count(self, chunk: Chunk, findings: list[Finding]) -> None:
        """The watch's own stage (a ``Callback``): metrics, the finding count of the exit code, and
        the findings to the writer (one stage for both: it runs for every chunk)."""
        if findings:
            self.metrics.count_findings(findings)
            self.findings += len(findings)
            if self.writer is not None:
                self.writer.write(findings)
                self.writer.stream.flush()

    def run(self, pipeline: Pipeline) -> PipelineStats:
        idle = threading.Thread(target=self._idle_watch, name="idle-watch", daemon=True)
        idle.start()
        try:
            return pipeline.run(self.sources, stop=self.stop_event)
        finally:
            self.stop_event.set()

    def _idle_watch(self) -> None:
        if self.idle_timeout is None:
            return
        while not self.stop_event.wait(0.05):
            last = self.metrics.last_chunk_at or self.metrics.started
            if self.metrics.clock() - last >= self.idle_timeout:
                self.stop(f"idle for {self.idle_timeout:g}s")


def _open_sources(addresses: Sequence[str], settings: _RunSettings,
                  metrics: DaemonMetrics) -> list[MeteredSource]:
    skip = exclude_skip(settings.excludes)
    opened = []
    for address in addresses:
        source = open_source(address, follow=True, checkpoint_dir=settings.checkpoint_dir,
                             from_end=settings.from_end, skip=skip)
        opened.append(MeteredSource(address, source, metrics))
    return opened


def _install_signal_handlers(watch: Watch) -> None:
    def handle(signum: int, frame: object) -> None:
        watch.stop(signal.Signals(signum).name)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, handle)


def _summary(watch: Watch, stats: PipelineStats, metrics: DaemonMetrics) -> dict[str, Any]:
    elapsed = metrics.clock() - metrics.started
    return {
        "findings": watch.findings,
        "chunks": stats.chunks,
        "bytes": stats.bytes,
        "seconds": round(elapsed, 3),
        "active_seconds": round(stats.active_seconds, 3),
        "stopped_by": watch.stopped_by,
        "errors": dict(stats.errors.counts),
        "joined_passes": stats.joined_passes,
        "joined_chunks": stats.joined_chunks,
    }


def _report_end(watch: Watch, pipeline: Pipeline, summary: dict[str, Any], stats: PipelineStats) -> None:
    click.echo(
        f"jitsec: stopped ({summary['stopped_by']}): {summary['findings']} finding(s), "
        f"{summary['chunks']} chunks, {summary['bytes']} bytes",
        err=True,
    )
    if stats.joined_passes:
        click.echo(f"jitsec: {stats.joined_chunks} standalone chunks (records, documents) scanned in "
                   f"{stats.joined_passes} one-pass batches", err=True)
    if stats.chunks:
        active = summary["active_seconds"]
        rate = f" ({stats.bytes / active / 1e6:.2f} MB/s)" if active else ""
        click.echo(f"jitsec: {active:.2f}s from the first batch to the last chunk handled{rate}", err=True)
    for source in watch.sources:
        history = getattr(source.source, "stats", None)
        if isinstance(history, GitStats):
            click.echo(
                f"jitsec: {source.name}: {history.commits} commits, {history.blobs_scanned} blobs "
                f"scanned ({history.bytes_scanned} bytes), {history.blobs_binary} binary skipped, "
                f"{history.blobs_repeated} repeats skipped",
                err=True,
            )
    if pipeline.repeats:
        click.echo(f"jitsec: {pipeline.repeats} repeat(s) of secrets already reported at the "
                   "commit that introduced them", err=True)
    for example in stats.errors.examples:
        click.echo(f"jitsec: {example}", err=True)


def _run(
    addresses: Sequence[str],
    *,
    settings: _RunSettings,
    response: ResponseOptions,
    output: TextIO | None,
    fmt: str,
) -> int:
    metrics = DaemonMetrics()
    watch: Watch | None = None
    with ExitStack() as cleanup:
        try:
            sources = _open_sources(addresses, settings, metrics)
            for source in sources:
                cleanup.callback(source.close)
            pipeline_settings = PipelineSettings(rules=RuleSettings(packs=settings.rules),
                                                 baselines=settings.baselines,
                                                 response=response if response.enabled else None)
            ruleset = load_rules(pipeline_settings.rules)
            writer = FindingWriter(cast(Format, fmt), output, ruleset) if output is not None else None
            watch = Watch(sources, metrics=metrics, idle_timeout=settings.idle_timeout, writer=writer)
            tail: list[Stage] = [Callback(watch.count)]
            pipeline = cleanup.enter_context(build_pipeline(pipeline_settings, ruleset=ruleset, tail=tail))
            if settings.listen is not None:
                server = HealthServer(metrics, *settings.listen)
                server.start()
                cleanup.callback(server.close)
                click.echo(f"jitsec: health and metrics on http://{_host_port(server.address)}/", err=True)
        except (SourceAddressError, PipelineSetupError, IgnoreSetupError, OSError) as exc:
            click.echo(f"jitsec: {exc}", err=True)
            return EXIT_ERROR
        book = pipeline.response.responder.incidents if pipeline.response is not None else None
        metrics.watch_sources([(s.name, s) for s in sources], book.__len__ if book is not None else None)
        if pipeline.response is not None:
            metrics.watch_sinks(pipeline.response.responder.sink_status)
        _install_signal_handlers(watch)
        click.echo(f"jitsec: watching {len(sources)} source(s); rules {ruleset.digest}", err=True)
        stats = watch.run(pipeline)
        summary = _summary(watch, stats, metrics)
        if writer is not None:
            writer.close(summary)
        _report_end(watch, pipeline, summary, stats)
    if pipeline.response is not None:  # closed now: what the sinks could not deliver stays spooled
        _report_undelivered(pipeline.response.responder.sink_status())
    if watch.stopped_by_signal:
        return EXIT_CLEAN  # a supervisor's stop is a clean stop: the findings were already alerted
    return EXIT_FINDINGS if watch.findings else EXIT_CLEAN


def _report_undelivered(statuses: Sequence[SinkStatus]) -> None:
    for status in statuses:
        if status.stats.pending:
            click.echo(f"jitsec: {status.stats.pending} alert(s) undelivered to {status.name} "
                       f"({status.stats.last_error or 'not attempted yet'}); kept in {status.spool}, "
                       "delivered at the next start", err=True)


def _host_port(address: tuple[str, int]) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True, slots=True)
class _RunSettings:
    """What both entry points (arguments, config file) resolve to."""

    rules: tuple[Path, ...] = ()
    baselines: tuple[Path, ...] = ()
    checkpoint_dir: Path | None = None
    from_end: bool = False
    idle_timeout: float | None = None
    listen: tuple[str, int] | None = None
    excludes: tuple[str, ...] = ()  # globs left out of followed folders


def _parse_listen(value: str | None) -> tuple[str, int] | None:
    if value is None:
        return None
    host, _, port = value.rpartition(":")
    if not port.isdigit():
        raise click.BadParameter(f"{value!r} is not HOST:PORT", param_hint="--listen")
    return host.strip("[]") or "127.0.0.1", int(port)


@click.command("watch")
@click.argument("sources", nargs=-1)
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Run as a daemon described by this TOML file (sources, alerts, checkpoints, listen).")
@click.option("--exit-when-idle", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
              help="Stop after this long without new data (for scripts and tests).")
@click.option("-f", "--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True,
              help="Output format of findings (json, sarif and gitleaks-json are written at shutdown).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write findings here instead of stdout.")
@click.option("--checkpoint-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Remember positions here, so a restart resumes without skipping or repeating.")
@click.option("--from-end", is_flag=True,
              help="Start followed files with no checkpoint at their end instead of their beginning.")
@click.option("--rules", "rules", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Extra rule pack (TOML); repeatable.")
@click.option("--baseline", "baselines", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Accepted findings (jitsec or detect-secrets baseline); repeatable.")
@click.option("--listen", metavar="HOST:PORT", help="Serve /healthz and /metrics here.")
@click.option("--exclude", "excludes", metavar="GLOB", multiple=True,
              help="Leave out paths of followed folders matching GLOB (a name anywhere, e.g. '*.gz', or "
                   "a path from the folder, e.g. 'archive/**'). Repeatable.")
@response_options
def watch(
    *,
    sources: tuple[str, ...],
    config_path: Path | None,
    exit_when_idle: float | None,
    fmt: str,
    output: Path | None,
    checkpoint_dir: Path | None,
    from_end: bool,
    rules: tuple[Path, ...],
    baselines: tuple[Path, ...],
    listen: str | None,
    excludes: tuple[str, ...],
    response: ResponseOptions,
) -> None:  # fmt: skip
    """Follow SOURCE... (a file, a directory, -, git:PATH, kafka://…, elasticsearch://…) until stopped,
    reporting secrets as they are written.

    Files are followed like `tail -F` (rotation and truncation included), directories recursively,
    git repositories ref by ref, Kafka topics as a consumer group, Elasticsearch indices by a
    watermark. With --checkpoint-dir a restart resumes where the last run acknowledged.

    \b
    Exit codes: 0 stopped by SIGTERM/SIGINT (a supervisor's stop), or idle/end of input with
    nothing found; 1 idle/end of input after findings; 2 could not run (bad options, sources or
    daemon config).

    \b
    Examples:
      jitsec watch /var/log/app/*.log --broker https://broker:8470 --alert syslog+udp://127.0.0.1:514
      kubectl logs -f deploy/api | jitsec watch -
      jitsec watch 'kafka://127.0.0.1:9092/app-logs?group=jitsec' --checkpoint-dir /var/lib/jitsec
      jitsec watch git:/srv/mirror.git --checkpoint-dir ck --exit-when-idle 30
      jitsec watch /var/log/app --exclude '*.gz' --exclude 'archive/**'  # not rotated archives
      jitsec watch --config /etc/jitsec/daemon.toml        # sources, alerts, /healthz and /metrics
    """
    if config_path is not None:
        if sources:
            raise click.UsageError("give sources either as arguments or in --config, not both")
        try:
            config = load_daemon_config(config_path)
        except DaemonConfigError as exc:
            click.echo(f"jitsec: {exc}", err=True)
            sys.exit(EXIT_ERROR)  # a configuration that cannot run is an error (2), not findings (1)
        code = _run_daemon(config, exit_when_idle, response, output, fmt, excludes)
        sys.exit(code)
    if not sources:
        raise click.UsageError("name at least one SOURCE, or --config FILE")
    settings = _RunSettings(
        rules=tuple(rules), baselines=tuple(baselines), checkpoint_dir=checkpoint_dir, from_end=from_end,
        idle_timeout=exit_when_idle, listen=_parse_listen(listen), excludes=tuple(excludes),
    )  # fmt: skip
    with _output_stream(output) as stream:
        code = _run(sources, settings=settings, response=response, output=stream, fmt=fmt)
    sys.exit(code)


def _run_daemon(  # noqa: PLR0917
    config: DaemonConfig, idle: float | None, response: ResponseOptions, output: Path | None, fmt: str,
    excludes: tuple[str, ...] = (),
) -> int:
    """The config file decides sources, sinks and positions; findings go to its alert sinks (and to
    ``--output`` when given)."""
    daemon_response = ResponseOptions(
        broker_url=config.broker or response.broker_url,
        alerts=config.alerts + response.alerts,
        on_leak=response.on_leak,
        state_dir=config.state_dir,
        broker_key=response.broker_key or os.environ.get("JITSEC_BROKER_KEY"),
        scanner_name=config.scanner_name or response.scanner_name,
        console_url=config.console_url or response.console_url,
    )
    settings = _RunSettings(
        rules=config.rules, checkpoint_dir=config.checkpoint_dir, from_end=config.from_end,
        idle_timeout=idle, listen=(config.listen_host, config.listen_port),
        excludes=config.exclude + excludes,
    )  # fmt: skip
    if output is None:
        return _run(config.sources, settings=settings, response=daemon_response, output=None, fmt=fmt)
    with _output_stream(output) as stream:
        return _run(config.sources, settings=settings, response=daemon_response, output=stream, fmt=fmt)


@contextmanager
def _output_stream(path: Path | None) -> Iterator[TextIO]:
    """Standard output, or ``path`` opened for appending (a restarted daemon keeps earlier findings)."""
    if path is None:
        yield sys.stdout
        return
    with path.open("a", encoding="utf-8") as handle:
        yield handle
