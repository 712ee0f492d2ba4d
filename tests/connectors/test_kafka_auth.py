"""Kafka with SASL: the address's security parameters, and the real source, pipeline and alert sink
through the test broker's SASL_PLAINTEXT listener (PLAIN and SCRAM). A wrong password is an ``auth``
error that is retried, never a crash, and the password appears in no error, log or repr."""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from jitsec.connectors.kafka_security import (
    MECHANISMS,
    PASSWORD_ENV,
    PROTOCOLS,
    KafkaAddressError,
    KafkaCredentialsError,
    KafkaSecurity,
    kafka_password,
    security_query,
)
from jitsec.connectors.sinks.factory import build_sink
from jitsec.connectors.sinks.kafka import KafkaSink, parse_kafka_sink_address
from jitsec.connectors.sinks.spool import Backoff
from jitsec.connectors.sources.kafka import (
    KafkaSource,
    KafkaSourceSettings,
    open_kafka_source,
    parse_kafka_address,
)
from jitsec.scanner.engine import Scanner
from jitsec.scanner.fingerprint import Fingerprinter
from jitsec.scanner.ruleset import load_ruleset
from kafka import KafkaConsumer, KafkaProducer

from jitsec.cli import main
from jitsec.kernel import credential_format as cf
from jitsec.kernel.records import Chunk, Confidence, Finding, Incident, KafkaOrigin, ResponseAction, Severity
from jitsec.kernel.redaction import preview
from jitsec.pipeline.runner import run_sources
from jitsec.pipeline.stages import Callback

FAST = KafkaSourceSettings(poll_timeout_ms=100, commit_interval_s=0.2, idle_exit_s=8.0,
                           retry_initial_s=0.1, retry_max_s=0.5, session_timeout_ms=6000,
                           connect_timeout_ms=1000)
Sasl = tuple[str, str, str]


def _sasl_query(username: str, mechanism: str = "PLAIN") -> str:
    return f"security=SASL_PLAINTEXT&mechanism={mechanism}&username={quote(username)}"


def _produce(bootstrap: str, username: str, password: str, topic: str, values: list[bytes]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", security_protocol="SASL_PLAINTEXT",
                             sasl_mechanism="PLAIN", sasl_plain_username=username,
                             sasl_plain_password=password)
    try:
        for value in values:
            producer.send(topic, value)
        producer.flush()
    finally:
        producer.close()


# -- address parsing ----------------------------------------------------------------------------------

NAMES = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=20)


@given(protocol=st.sampled_from(PROTOCOLS), mechanism=st.sampled_from(MECHANISMS), username=NAMES,
       ca=st.one_of(st.none(), st.from_regex(r"/[a-z0-9/._-]{1,30}", fullmatch=True)))
def test_valid_security_parameters_round_trip(protocol: str, mechanism: str, username: str,
                                              ca: str | None) -> None:
    sasl = protocol.startswith("SASL")
    tls = protocol.endswith("SSL")
    security = KafkaSecurity(protocol, mechanism if sasl else None,  # type: ignore[arg-type]
                             username if sasl else None, ca if tls else None)
    query = security_query(security)
    source = parse_kafka_address(f"kafka://h:9092/t?group=g{'&' + query if query else ''}")
    assert source.security == security
    assert source.group == "g"
    sink = parse_kafka_sink_address(f"kafka://h:9092/alerts{'?' + query if query else ''}")
    assert sink == ("h:9092", "alerts", security)
    assert security.uses_sasl == sasl and security.uses_tls == tls


@given(value=st.text(st.characters(codec="ascii", categories=("L", "N", "P")), min_size=1, max_size=15))
def test_bad_security_or_mechanism_names_the_parameter_and_the_allowed_values(value: str) -> None:
    if value.upper() not in PROTOCOLS:
        with pytest.raises(KafkaAddressError, match="security must be one of PLAINTEXT, SASL_PLAINTEXT"):
            parse_kafka_address(f"kafka://h:1/t?security={quote(value, safe='')}")
    if value.upper() not in MECHANISMS:
        with pytest.raises(KafkaAddressError, match="needs mechanism, one of PLAIN, SCRAM-SHA-256"):
            parse_kafka_sink_address(f"kafka://h:1/t?security=SASL_SSL&username=u&mechanism={quote(value)}")


@pytest.mark.parametrize(("query", "message"), [
    ("security=SASL_PLAINTEXT&mechanism=PLAIN", "needs username"),
    ("security=SASL_SSL&username=u", "needs mechanism"),
    ("username=u", "mechanism and username need security=SASL_PLAINTEXT or SASL_SSL"),
    ("security=SSL&mechanism=PLAIN", "need security=SASL"),
    ("security=SASL_PLAINTEXT&mechanism=PLAIN&username=u&ca=/etc/ca.pem", "ca needs security=SSL"),
    ("security=SSL&security=SSL", "security given 2 times"),
    ("password=hunter2", "unknown parameter"),
])
def test_inconsistent_security_parameters_are_refused(query: str, message: str) -> None:
    with pytest.raises(KafkaAddressError, match=message):
        parse_kafka_address(f"kafka://h:1/t?{query}")
    with pytest.raises(KafkaAddressError, match=message):
        parse_kafka_sink_address(f"kafka://h:1/t?{query}")


def test_the_password_comes_only_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    address = f"kafka://h:1/t?{_sasl_query('alice', 'SCRAM-SHA-512')}"
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    with pytest.raises(KafkaCredentialsError, match=PASSWORD_ENV):
        open_kafka_source(address, follow=False)
    with pytest.raises(KafkaCredentialsError, match=PASSWORD_ENV):
        build_sink(address, Path("/nonexistent-spool"))
    monkeypatch.setenv(PASSWORD_ENV, "s3cret-pw-value")
    source = open_kafka_source(address, follow=False)
    options = source.address.security.client_options("s3cret-pw-value")
    assert options == {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-512",
                       "sasl_plain_username": "alice", "sasl_plain_password": "s3cret-pw-value"}
    assert "s3cret" not in repr(source.address) and "s3cret" not in repr(vars(source).get("address"))
    assert kafka_password(KafkaSecurity()) is None  # PLAINTEXT needs none


def test_scan_without_the_password_exits_2_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    address = f"kafka://127.0.0.1:1/logs?{_sasl_query('alice')}"
    result = CliRunner().invoke(main, ["scan", address])
    assert result.exit_code == 2
    assert f"needs the password in the {PASSWORD_ENV} environment variable" in result.output


def test_tls_options_use_the_given_ca_or_the_system_store(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    tls = parse_kafka_address(f"kafka://h:1/t?security=SSL&ca={ca}").security
    assert tls.client_options(None) == {"security_protocol": "SSL", "ssl_check_hostname": True,
                                        "ssl_cafile": str(ca)}
    assert kafka_password(tls) is None
    system = parse_kafka_address("kafka://h:1/t?security=SASL_SSL&mechanism=PLAIN&username=u").security
    assert "ssl_cafile" not in system.client_options("pw")
    with pytest.raises(KafkaAddressError, match="no readable CA bundle"):
        kafka_password(KafkaSecurity("SSL", ca_file=str(tmp_path / "missing.pem")))


# -- the real broker's SASL listener --------------------------------------------------------------------


@pytest.fixture(scope="module")
def scanner(tmp_path_factory: pytest.TempPathFactory) -> Scanner:
    return Scanner(load_ruleset(), Fingerprinter(b"test-key-" * 4), cache_dir=tmp_path_factory.mktemp("hs"))


@pytest.mark.kafka
@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_planted_tokens_are_read_through_sasl_by_the_source_and_pipeline(
        kafka_sasl: Sasl, scanner: Scanner, mechanism: str) -> None:
    bootstrap, username, password = kafka_sasl
    topic = f"jitsec-sasl-{uuid.uuid4().hex[:10]}"
    tokens = [cf.mint(cf.CredentialKind.ENGINE_TOKEN) for _ in range(2)]
    _produce(bootstrap, username, password, topic, [
        json.dumps({"msg": "agent started", "ctx": {"auth": f"Bearer {tokens[0]}"}}).encode(),
        f"worker curl -H 'Authorization: Bearer {tokens[1]}'".encode(),
    ])
    query = _sasl_query(username, mechanism)
    address = parse_kafka_address(f"kafka://{bootstrap}/{topic}?group=sasl&{query}")
    source = KafkaSource(address, follow=False, settings=FAST, password=password)
    found: list[Finding] = []
    lock = threading.Lock()

    def on_findings(chunk: Chunk, findings: list[Finding]) -> None:
        with lock:
            found.extend(findings)

    run_sources([source], scanner, [Callback(on_findings)])
    ours = sorted((f for f in found if f.credential_sha256), key=lambda f: f.origin.offset)  # type: ignore[union-attr]
    assert [f.origin for f in ours] == [KafkaOrigin(topic, 0, 0, "ctx.auth"), KafkaOrigin(topic, 0, 1, None)]
    assert [f.credential_sha256 for f in ours] == [cf.sha256_fingerprint(t) for t in tokens]
    assert source.errors.total == 0


@pytest.mark.kafka
def test_the_alert_sink_writes_through_sasl(kafka_sasl: Sasl, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    bootstrap, username, password = kafka_sasl
    monkeypatch.setenv(PASSWORD_ENV, password)
    topic = f"jitsec-sasl-alerts-{uuid.uuid4().hex[:10]}"
    secret = cf.mint(cf.CredentialKind.ENGINE_TOKEN)
    incident = Incident(
        incident_id="inc-sasl", version=1, fingerprint=cf.sha256_fingerprint(secret),
        rule_id="jitsec-engine-token", description="broker-issued engine token",
        severity=Severity.CRITICAL, confidence=Confidence.CONFIRMED, preview=preview(secret),
        occurrences=1, first_seen=1_750_000_000.0, last_seen=1_750_000_000.0,
        locations=(f"kafka:{topic}/0@0",), action=ResponseAction.REVOKED, lease_id="lease-1",
        agent="agent-a", task="task-1", latency_ms=1.0)
    sink = build_sink(f"kafka://{bootstrap}/{topic}?{_sasl_query(username, 'SCRAM-SHA-256')}", tmp_path)
    assert isinstance(sink, KafkaSink)
    sink.send(incident)
    assert sink.flush(timeout=60)
    sink.close()
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN",
                             sasl_plain_username=username, sasl_plain_password=password,
                             consumer_timeout_ms=20_000)
    try:
        record = next(iter(consumer))
    finally:
        consumer.close()
    assert record.key == b"inc-sasl"
    assert json.loads(record.value)["incident_id"] == "inc-sasl"


def _run_until_errors(source: KafkaSource, kind: str, count: int, limit_s: float = 60.0) -> list[Chunk]:
    """Runs the source in a thread until ``count`` errors of ``kind`` (or ``limit_s``), then closes it."""
    chunks: list[Chunk] = []
    thread = threading.Thread(target=lambda: chunks.extend(source.chunks()), daemon=True)
    thread.start()
    deadline = time.monotonic() + limit_s
    while source.errors.counts.get(kind, 0) < count and time.monotonic() < deadline and thread.is_alive():
        time.sleep(0.1)
    source.close()
    thread.join(timeout=30)
    assert not thread.is_alive()
    return chunks


@pytest.mark.kafka
def test_a_wrong_password_is_an_auth_error_retried_without_echoing_it(
        kafka_sasl: Sasl, caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    bootstrap, username, _ = kafka_sasl
    wrong = f"wrong-{uuid.uuid4().hex}"
    topic = f"jitsec-sasl-{uuid.uuid4().hex[:10]}"
    address = parse_kafka_address(f"kafka://{bootstrap}/{topic}?group=g-{topic}&{_sasl_query(username)}")
    caplog.set_level(logging.DEBUG)  # kafka-python dumps requests (the PLAIN login too) at DEBUG
    # the broker answers a refused login after a delay; an attempt needs room to hear the answer
    settings = dataclasses.replace(FAST, connect_timeout_ms=3000)
    source = KafkaSource(address, follow=True, settings=settings, password=wrong)
    chunks = _run_until_errors(source, "auth", 2)
    assert chunks == []
    # retried, not a crash: a loaded broker sometimes closes the socket before its refusal is heard,
    # and that attempt counts as a connection error
    assert source.errors.counts.get("auth", 0) >= 1
    assert source.errors.counts.get("auth", 0) + source.errors.counts.get("connect", 0) >= 2
    assert any(f"PLAIN login of {username!r} refused" in example for example in source.errors.examples)
    sink = KafkaSink(bootstrap, topic, tmp_path, backoff=Backoff(initial=0.05, maximum=0.3), timeout=3.0,
                     security=address.security, password=wrong)
    sink.send(Incident(
        incident_id="inc-x", version=1, fingerprint="0" * 64, rule_id="r", description="d",
        severity=Severity.HIGH, confidence=Confidence.CONFIRMED, preview="jit_…", occurrences=1,
        first_seen=0.0, last_seen=0.0, locations=(), action=ResponseAction.ALERT_ONLY, lease_id=None,
        agent=None, task=None, latency_ms=None))
    deadline = time.monotonic() + 60
    while "auth" not in (sink.stats().last_error or "") and time.monotonic() < deadline:
        time.sleep(0.1)
    stats = sink.stats()
    sink.close()
    assert stats.failures >= 1 and stats.pending == 1  # kept for the next try, not lost
    assert stats.last_error == f"DeliveryError: kafka refused the login of {username!r} (PLAIN): auth"
    written = "\n".join([*source.errors.examples, stats.last_error, caplog.text,
                         repr(address), repr(source.address)])
    assert wrong not in written


@pytest.mark.kafka
def test_the_sasl_listener_refuses_a_client_without_credentials(kafka_sasl: Sasl) -> None:
    bootstrap, username, password = kafka_sasl
    topic = f"jitsec-sasl-{uuid.uuid4().hex[:10]}"
    _produce(bootstrap, username, password, topic, [b"only for authenticated readers"])
    source = KafkaSource(parse_kafka_address(f"kafka://{bootstrap}/{topic}?group=g-{topic}"), follow=True,
                         settings=FAST)
    chunks = _run_until_errors(source, "connect", 2)
    assert chunks == []
    assert source.errors.counts.get("connect", 0) >= 2
