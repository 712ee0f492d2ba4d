"""Planted broker-format credentials in Kafka records reach the real scanner through KafkaSource and the
pipeline, located by topic, partition, offset and JSON field; every chunk is acknowledged and committed."""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path

import pytest
from jitsec.connectors.sources.kafka import KafkaSource, KafkaSourceSettings, parse_kafka_address
from jitsec.scanner.engine import Scanner
from jitsec.scanner.fingerprint import Fingerprinter
from jitsec.scanner.ruleset import load_ruleset
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from jitsec.kernel import credential_format as cf
from jitsec.kernel.records import Chunk, Finding, KafkaOrigin
from jitsec.pipeline.runner import run_sources
from jitsec.pipeline.stages import Callback

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
def scanner(tmp_path_factory: pytest.TempPathFactory) -> Scanner:
    return Scanner(load_ruleset(), Fingerprinter(b"test-key-" * 4), cache_dir=tmp_path_factory.mktemp("hs"))


def test_planted_tokens_are_found_where_they_were_produced(kafka_bootstrap: str, scanner: Scanner) -> None:
    topic = f"jitsec-e2e-{uuid.uuid4().hex[:10]}"
    tokens = [cf.mint(cf.CredentialKind.ENGINE_TOKEN) for _ in range(3)]
    values = [
        json.dumps({"level": "info", "msg": "agent started",
                    "ctx": {"auth": f"Bearer {tokens[0]}"}}).encode(),
        f"2026-01-01T00:00:00Z worker curl -H 'Authorization: Bearer {tokens[1]}'".encode(),
        b"\xff\xfe poison " + tokens[2].encode(),  # invalid UTF-8 still scanned
        b"nothing to see here",
    ]
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    for value in values:
        producer.send(topic, value)
    producer.flush()
    producer.close()

    source = KafkaSource(parse_kafka_address(f"kafka://{kafka_bootstrap}/{topic}?group=e2e"), follow=False,
                         settings=KafkaSourceSettings(idle_exit_s=8.0, poll_timeout_ms=100))
    found: list[Finding] = []
    lock = threading.Lock()

    def on_findings(chunk: Chunk, findings: list[Finding]) -> None:
        with lock:
            found.extend(findings)

    stats = run_sources([source], scanner, [Callback(on_findings)])
    broker_findings = sorted((f for f in found if f.credential_sha256), key=lambda f: f.origin.offset)  # type: ignore[union-attr]
    assert [f.origin for f in broker_findings] == [
        KafkaOrigin(topic, 0, 0, "ctx.auth"), KafkaOrigin(topic, 0, 1, None), KafkaOrigin(topic, 0, 2, None)]
    assert [f.credential_sha256 for f in broker_findings] == [cf.sha256_fingerprint(t) for t in tokens]
    for finding in found:
        assert all(token not in finding.preview for token in tokens)
    assert stats.errors.counts.get("invalid_utf8") == 1

    consumer = KafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id="e2e", enable_auto_commit=False)
    try:
        assert consumer.committed(TopicPartition(topic, 0)) == len(values)
    finally:
        consumer.close()


def test_a_leak_in_the_last_record_of_a_quiet_topic_is_reported_while_following(
        kafka_bootstrap: str, scanner: Scanner) -> None:
    topic = f"jitsec-e2e-{uuid.uuid4().hex[:10]}"
    token = cf.mint(cf.CredentialKind.ENGINE_TOKEN)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    producer.send(topic, f"deploy finished, token={token}".encode())  # no newline, and nothing after it
    producer.flush()
    producer.close()
    source = KafkaSource(parse_kafka_address(f"kafka://{kafka_bootstrap}/{topic}?group=quiet"), follow=True,
                         settings=KafkaSourceSettings(poll_timeout_ms=100))
    reported = threading.Event()

    def on_findings(chunk: Chunk, findings: list[Finding]) -> None:
        if any(f.credential_sha256 == cf.sha256_fingerprint(token) for f in findings):
            reported.set()

    thread = threading.Thread(target=run_sources, args=([source], scanner, [Callback(on_findings)]),
                              daemon=True)
    thread.start()
    try:
        assert reported.wait(timeout=30), "the finding waited for a record that never came"
    finally:
        source.close()
        thread.join(timeout=10)


def test_benchmark_script_runs_its_short_default(kafka_bootstrap: str, tmp_path: Path) -> None:
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    repo = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, str(repo / "benchmarks" / "kafka_scan.py"), "--bootstrap", kafka_bootstrap,
         "--megabytes", "1", "--consumers", "1"],
        capture_output=True, text=True, timeout=180, cwd=repo, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "MB/s" in result.stdout
