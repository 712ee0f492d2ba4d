"""Kafka going away mid-stream and coming back, with the real broker stopped and started again by
scripts/services (a forwarder cannot cut it: the client reconnects to the advertised listener).

While the broker is down a following KafkaSource, read through the real scanner pipeline, counts the
outage and keeps running; the Kafka alert sink spools what is sent meanwhile. Once the broker is back,
every planted token of the records produced before and after is found, the group's committed offsets
reach the end of the topic, and the alerts arrive in order. One restart per run; the broker is always
started again (``finally``), because the tests after this one need it.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from jitsec.connectors.sinks.kafka import KafkaSink
from jitsec.connectors.sinks.spool import Backoff
from jitsec.connectors.sources.kafka import KafkaSource, KafkaSourceSettings, parse_kafka_address
from jitsec.scanner.engine import Scanner
from jitsec.scanner.fingerprint import Fingerprinter
from jitsec.scanner.ruleset import load_ruleset
from kafka import KafkaConsumer

from jitsec.kernel import credential_format as cf
from jitsec.kernel.records import Chunk, Confidence, Finding, Incident, ResponseAction, Severity
from jitsec.kernel.redaction import preview
from jitsec.pipeline.runner import PipelineStats, run_sources
from jitsec.pipeline.stages import Callback
from jitsec.testing import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
BEFORE = 120  # records produced before the outage
AFTER = 60  # records produced once the broker is back
PAUSE_AT = 40  # records handled when the broker is stopped; the rest of BEFORE is still on the broker
# Small fetches, so that most of the topic is still on the broker when it goes away.
SETTINGS = KafkaSourceSettings(poll_timeout_ms=100, commit_interval_s=0.2, idle_exit_s=20.0,
                               retry_initial_s=0.1, retry_max_s=0.5, session_timeout_ms=6000,
                               connect_timeout_ms=1000, max_poll_records=10, max_partition_fetch_bytes=1024)


def _services(action: str) -> dict[str, str]:
    """``scripts/services ACTION kafka``; the KEY=VALUE lines it prints. Start waits until a record
    is acknowledged, so the broker is ready when this returns."""
    result = subprocess.run([str(REPO / "scripts" / "services"), action, "kafka"], cwd=REPO,
                            capture_output=True, text=True, timeout=600, check=False)
    if result.returncode != 0 and action != "status":
        raise AssertionError(f"scripts/services {action} kafka failed: {result.stderr[-2000:]}")
    pairs = (line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    return dict(pairs)


def _require_managed_broker(bootstrap: str) -> None:
    """The broker under test must be the one scripts/services runs, or it cannot be restarted."""
    managed = _services("status").get("JITSEC_TEST_KAFKA_BOOTSTRAP")
    if managed != bootstrap:
        message = f"the broker at {bootstrap} is not the one scripts/services manages ({managed})"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def _wait(predicate: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    assert wait_until(predicate, timeout, interval=0.05), f"timed out waiting for {what}"


def _incident(number: int, token: str, topic: str) -> Incident:
    now = time.time()
    return Incident(
        incident_id=f"inc-{number}", version=1, fingerprint=cf.sha256_fingerprint(token),
        rule_id="jitsec-engine-token", description="broker-issued engine token", severity=Severity.CRITICAL,
        confidence=Confidence.CONFIRMED, preview=preview(token), occurrences=1, first_seen=now,
        last_seen=now, locations=(f"kafka:{topic}/0@{number}",), action=ResponseAction.REVOKED)


def _alert_keys(bootstrap: str, topic: str) -> list[str]:
    """Every record key of the (one-partition) alert topic in order, read until 5 s pass without one:
    a late copy of an older incident would show up at the end."""
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=5_000)
    keys: list[str] = []
    try:
        for record in consumer:
            keys.append(record.key.decode())
            assert json.loads(record.value)["incident_id"] == keys[-1]
    finally:
        consumer.close()
    return keys


@pytest.fixture(scope="module")
def scanner(tmp_path_factory: pytest.TempPathFactory) -> Scanner:
    return Scanner(load_ruleset(), Fingerprinter(b"test-key-" * 4), cache_dir=tmp_path_factory.mktemp("hs"))


def test_kafka_going_away_mid_stream_and_back_loses_nothing(
        kafka_bootstrap: str, kafka_tools, scanner: Scanner, tmp_path: Path) -> None:
    _require_managed_broker(kafka_bootstrap)
    topic = kafka_tools.topic(2)
    group = f"g-outage-{uuid.uuid4().hex[:8]}"
    tokens = [cf.mint(cf.CredentialKind.ENGINE_TOKEN) for _ in range(BEFORE + AFTER)]
    records = [f"job {n} finished, token={token}".encode() for n, token in enumerate(tokens)]
    kafka_tools.produce(topic, records[:BEFORE])

    alerts = f"jitsec-alerts-{uuid.uuid4().hex[:10]}"
    sink = KafkaSink(kafka_bootstrap, alerts, tmp_path, backoff=Backoff(initial=0.05, maximum=0.5),
                     timeout=2.0)
    sink.send(_incident(0, tokens[0], topic))
    assert sink.flush(timeout=60)  # a connected producer, before the outage

    address = parse_kafka_address(f"kafka://{kafka_bootstrap}/{topic}?group={group}")
    source = KafkaSource(address, follow=True, settings=SETTINGS)
    found: set[str] = set()
    handled = [0]
    lock = threading.Lock()
    broker_down = threading.Event()

    paused = [False]

    def on_findings(chunk: Chunk, findings: list[Finding]) -> None:
        with lock:
            handled[0] += len(chunk.parts) or 1  # records: a chunk holds a poll's records of a partition
            found.update(f.credential_sha256 for f in findings if f.credential_sha256)
            pause = handled[0] >= PAUSE_AT and not paused[0]
            paused[0] = paused[0] or pause
        if pause:
            broker_down.wait(timeout=300)  # the scanner is busy while the broker goes away

    result: list[PipelineStats] = []
    stages = [Callback(on_findings)]
    runner = threading.Thread(target=lambda: result.append(run_sources([source], scanner, stages)),
                              daemon=True)
    runner.start()
    try:
        try:
            _wait(lambda: handled[0] >= PAUSE_AT, "the first records")
            _services("stop")
            broker_down.set()
            for number in (1, 2, 3):
                sink.send(_incident(number, tokens[number], topic))
            _wait(lambda: source.errors.counts.get("connection", 0) >= 1, "the source to count the outage")
            _wait(lambda: sink.stats().failures >= 1, "the sink to count a failed delivery")
            time.sleep(3)  # a few more seconds of outage: the source keeps polling, the sink retrying
            assert runner.is_alive(), "the pipeline stopped while the broker was away"
            assert handled[0] < BEFORE, "everything was read before the outage; nothing was tested"
            assert sink.stats().pending == 3
        finally:
            broker_down.set()
            _services("start")  # idempotent; always, so that the tests after this one have a broker

        kafka_tools.produce(topic, records[BEFORE:])
        wanted = {cf.sha256_fingerprint(token) for token in tokens}
        _wait(lambda: wanted <= found, "every planted token", timeout=180)
        assert sink.flush(timeout=120)
    finally:  # also on failure: no consumer or producer left running into the next tests
        sink.close()
        source.close()
        runner.join(timeout=60)
    assert not runner.is_alive(), "the pipeline did not stop after close()"

    stats = result[0]
    assert stats.errors.counts.get("connection", 0) >= 1
    assert "source" not in stats.errors.counts and "handler" not in stats.errors.counts  # nothing escaped
    assert kafka_tools.committed_total(topic, group, 2) == BEFORE + AFTER  # committed to the end
    again = KafkaSource(address, follow=False, settings=SETTINGS)
    try:
        assert list(again.chunks()) == []  # the group has nothing left to read
    finally:
        again.close()
    sent = ["inc-0", "inc-1", "inc-2", "inc-3"]
    arrived = _alert_keys(kafka_bootstrap, alerts)
    assert set(arrived) == set(sent)
    order = [sent.index(key) for key in arrived]
    assert order == sorted(order), arrived  # a retry may repeat one at once, never deliver it late
