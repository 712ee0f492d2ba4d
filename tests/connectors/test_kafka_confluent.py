"""``kafka://…?client=confluent``: the Kafka source over librdkafka (the jitsec[confluent] extra), against
the real broker: the same chunks, findings and locations as with kafka-python, commits of handled
records only, two members splitting a topic, a refused SASL login counted as ``auth``."""

from __future__ import annotations

import json
import os
import threading
import uuid

import pytest

pytest.importorskip("confluent_kafka")

from jitsec.connectors.address import open_source
from jitsec.connectors.sources.kafka import (
    KafkaAddressError,
    KafkaSource,
    KafkaSourceSettings,
    open_kafka_source,
    parse_kafka_address,
)
from jitsec.connectors.sources.kafka_confluent import ConfluentKafkaSource
from jitsec.scanner.engine import Scanner
from jitsec.scanner.fingerprint import Fingerprinter
from jitsec.scanner.ruleset import load_ruleset

from jitsec.kernel import credential_format as cf
from jitsec.kernel.records import Chunk, Finding, KafkaOrigin
from jitsec.pipeline.runner import run_sources
from jitsec.pipeline.stages import Callback
from jitsec.testing import wait_until

pytestmark = pytest.mark.kafka

FAST = KafkaSourceSettings(poll_timeout_ms=100, commit_interval_s=0.2, idle_exit_s=15.0, retry_max_s=0.5,
                           session_timeout_ms=6000, connect_timeout_ms=2000)


def _source(bootstrap: str, topic: str, group: str, *, follow: bool = False,
            query: str = "") -> ConfluentKafkaSource:
    address = parse_kafka_address(f"kafka://{bootstrap}/{topic}?group={group}&client=confluent{query}")
    return ConfluentKafkaSource(address, follow=follow, settings=FAST)


def test_the_address_chooses_the_client() -> None:
    assert parse_kafka_address("kafka://h:1/t").client == "kafka-python"
    assert parse_kafka_address("kafka://h:1/t?client=confluent").client == "confluent"
    chosen = open_source("kafka://h:1/t?group=g&client=confluent", follow=True)
    assert isinstance(chosen, ConfluentKafkaSource)
    assert type(open_source("kafka://h:1/t?client=kafka-python", follow=True)) is KafkaSource
    assert type(open_source("kafka://h:1/t", follow=True)) is KafkaSource
    with pytest.raises(KafkaAddressError, match="client must be"):
        parse_kafka_address("kafka://h:1/t?client=librdkafka")
    with pytest.raises(KafkaAddressError, match="kafka_confluent"):
        open_kafka_source("kafka://h:1/t?client=confluent", follow=True)


@pytest.fixture(scope="module")
def scanner(tmp_path_factory: pytest.TempPathFactory) -> Scanner:
    return Scanner(load_ruleset(), Fingerprinter(b"test-key-" * 4), cache_dir=tmp_path_factory.mktemp("hs"))


def test_planted_tokens_are_found_where_they_were_produced(kafka_bootstrap: str, kafka_tools,
                                                           scanner: Scanner) -> None:
    topic = kafka_tools.topic(2)
    tokens = [cf.mint(cf.CredentialKind.ENGINE_TOKEN) for _ in range(3)]
    kafka_tools.produce(topic, [
        json.dumps({"level": "info", "ctx": {"auth": f"Bearer {tokens[0]}"}, "n": 1}).encode(),
        f"worker curl -H 'Authorization: Bearer {tokens[1]}'".encode(),
        b"\xff\xfe poison " + tokens[2].encode(),
        b"",
    ], partition=1)
    kafka_tools.produce(topic, [f"line {n}".encode() for n in range(50)], partition=0)
    source = _source(kafka_bootstrap, topic, "g-confluent")
    found: list[Finding] = []
    parts: list[Chunk] = []
    lock = threading.Lock()

    def on_findings(chunk: Chunk, findings: list[Finding]) -> None:
        with lock:
            found.extend(findings)
            parts.extend(chunk.split_parts())

    stats = run_sources([source], scanner, [Callback(on_findings)])  # a scan: it ends at the end
    located = [(f.origin, f.credential_sha256) for f in found if f.credential_sha256]
    assert located == [(KafkaOrigin(topic, 1, 0, "ctx.auth"), cf.sha256_fingerprint(tokens[0])),
                       (KafkaOrigin(topic, 1, 1, None), cf.sha256_fingerprint(tokens[1])),
                       (KafkaOrigin(topic, 1, 2, None), cf.sha256_fingerprint(tokens[2]))]
    assert KafkaOrigin(topic, 1, 0, "level") in {part.origin for part in parts}
    assert source.records_read == 54
    assert source.errors.counts == {"invalid_utf8": 1}
    assert "source" not in stats.errors.counts
    assert kafka_tools.committed(topic, "g-confluent", 2) == [50, 4]


def test_only_acknowledged_records_are_committed(kafka_bootstrap: str, kafka_tools) -> None:
    topic = kafka_tools.topic(1)
    kafka_tools.produce(topic, [b"first", b"second", b"third"])
    source = _source(kafka_bootstrap, topic, "g-confluent-ack")
    for _chunk in source.chunks():
        break  # read, never acknowledged
    source.close()
    assert kafka_tools.committed(topic, "g-confluent-ack", 1) == [None]

    source = _source(kafka_bootstrap, topic, "g-confluent-ack")
    for chunk in source.chunks():
        assert [part.data for part in chunk.split_parts()] == [b"first\n", b"second\n", b"third\n"]
        source.acknowledge(chunk)
    source.close()
    assert kafka_tools.committed(topic, "g-confluent-ack", 1) == [3]


def test_two_members_split_the_partitions_and_read_everything_once_handled(
        kafka_bootstrap: str, kafka_tools) -> None:
    topic = kafka_tools.topic(4)
    for partition in range(4):
        kafka_tools.produce(topic, [f"p{partition}-{n}".encode() for n in range(30)], partition=partition)
    group = f"g-confluent-{uuid.uuid4().hex[:8]}"
    sources = [_source(kafka_bootstrap, topic, group, follow=True) for _ in range(2)]
    seen: list[set[tuple[int, int]]] = [set(), set()]

    def run(index: int) -> None:
        for chunk in sources[index].chunks():
            seen[index].update((p.origin.partition, p.origin.offset)  # type: ignore[union-attr]
                               for p in chunk.split_parts())
            sources[index].acknowledge(chunk)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(2)]
    for thread in threads:
        thread.start()
    try:
        assert wait_until(lambda: len(seen[0] | seen[1]) == 120, 60, interval=0.05)
        assert wait_until(lambda: kafka_tools.committed_total(topic, group, 4) == 120, 60, interval=0.2)
    finally:
        for source in sources:
            source.close()
        for thread in threads:
            thread.join(timeout=20)
    assert seen[0] | seen[1] == {(p, n) for p in range(4) for n in range(30)}


@pytest.mark.skipif("JITSEC_TEST_KAFKA_SASL_BOOTSTRAP" not in os.environ, reason="no SASL listener")
def test_a_refused_login_is_counted_as_auth_and_names_no_password(kafka_tools) -> None:
    bootstrap = os.environ["JITSEC_TEST_KAFKA_SASL_BOOTSTRAP"]
    user = os.environ.get("JITSEC_TEST_KAFKA_SASL_USERNAME", "jitsec")
    address = parse_kafka_address(f"kafka://{bootstrap}/t-{uuid.uuid4().hex[:6]}?client=confluent"
                                  f"&security=SASL_PLAINTEXT&mechanism=PLAIN&username={user}")
    wrong = "not-the-password-" + uuid.uuid4().hex
    source = ConfluentKafkaSource(address, follow=True, settings=FAST, password=wrong)
    thread = threading.Thread(target=lambda: list(source.chunks()), daemon=True)
    thread.start()
    try:
        assert wait_until(lambda: source.errors.counts.get("auth", 0) >= 1, 30, interval=0.1)
    finally:
        source.close()
        thread.join(timeout=20)
    assert not any(wrong in example for example in source.errors.examples)
