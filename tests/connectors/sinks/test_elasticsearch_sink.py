"""ElasticsearchSink against the real node: incidents become ECS documents a SOC can search by rule,
kind and severity; newer versions replace older ones and never the reverse; a node that is not reachable
yet only delays them."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch
from jitsec.connectors.sinks.elasticsearch import (
    ElasticsearchSink,
    incident_to_ecs,
    parse_elasticsearch_sink_spec,
)
from jitsec.connectors.sinks.factory import build_sink
from jitsec.connectors.sinks.spool import Backoff

from jitsec.kernel import credential_format as cf
from jitsec.kernel.records import Confidence, Incident, ResponseAction, Severity
from jitsec.kernel.redaction import preview

FAST = Backoff(initial=0.05, maximum=0.3)


def make_incident(number: int, version: int = 1) -> tuple[Incident, str]:
    secret = cf.mint(cf.CredentialKind.ENGINE_TOKEN)
    incident = Incident(
        incident_id=f"inc-{number}", version=version, fingerprint=cf.sha256_fingerprint(secret),
        rule_id="jitsec-engine-token", description="broker-issued engine token", severity=Severity.CRITICAL,
        confidence=Confidence.CONFIRMED, preview=preview(secret), occurrences=version,
        first_seen=1_750_000_000.0, last_seen=1_750_000_000.0 + version,
        locations=(f"es:logs/{number}#message",), action=ResponseAction.REVOKED, lease_id=f"lease-{number}",
        agent="agent-a", task="task-1", latency_ms=12.5, rules_digest="abc123")
    return incident, secret


def test_ecs_document_carries_the_fields_a_soc_searches_by() -> None:
    incident, secret = make_incident(7)
    document = incident_to_ecs(incident)
    assert document["@timestamp"] == "2025-06-15T15:06:41.000Z"
    assert document["event"]["kind"] == "alert"
    assert document["event"]["category"] == ["intrusion_detection"]
    assert document["event"]["severity"] == 99
    assert document["event"]["outcome"] == "success"
    assert document["rule"]["id"] == document["rule"]["name"] == "jitsec-engine-token"
    assert document["jitsec"]["incident"]["lease_id"] == "lease-7"
    assert secret not in json.dumps(document)


def test_sink_spec_parses_and_rejects() -> None:
    assert parse_elasticsearch_sink_spec("elasticsearch://127.0.0.1:9200/soc-alerts") == (
        "http://127.0.0.1:9200", "soc-alerts")
    assert parse_elasticsearch_sink_spec("elasticsearch://es:9200")[1] == "jitsec-incidents"
    for bad in ("elasticsearch://es/x", "elasticsearch://es:9200/Upper", "elasticsearch://es:9200/a*"):
        with pytest.raises(ValueError, match="elasticsearch://HOST:PORT/INDEX"):
            parse_elasticsearch_sink_spec(bad)


@pytest.fixture
def es(elasticsearch_url: str) -> Iterator[Elasticsearch]:
    client = Elasticsearch(elasticsearch_url, request_timeout=30)
    yield client
    client.close()


@pytest.fixture
def index(es: Elasticsearch) -> Iterator[str]:
    name = f"jitsec-incidents-test-{uuid.uuid4().hex[:10]}"
    yield name
    es.indices.delete(index=name, ignore_unavailable=True)


@pytest.mark.elasticsearch
def test_incidents_are_searchable_and_newer_versions_win(
        es: Elasticsearch, index: str, elasticsearch_url: str, tmp_path: Path) -> None:
    sink = build_sink(f"elasticsearch://{elasticsearch_url.removeprefix('http://')}/{index}", tmp_path)
    assert isinstance(sink, ElasticsearchSink)
    first, secret = make_incident(1)
    newer = replace(first, version=3, occurrences=3, last_seen=first.last_seen + 60)
    older_retry = replace(first, version=2, occurrences=2)
    low = replace(make_incident(2)[0], severity=Severity.LOW, action=ResponseAction.ALERT_ONLY)
    for incident in (first, newer, older_retry, low):
        sink.send(incident)
    assert sink.flush(timeout=60)
    sink.close()
    es.indices.refresh(index=index)

    hits = es.search(index=index, query={"bool": {"filter": [
        {"term": {"event.kind": "alert"}}, {"term": {"rule.id": "jitsec-engine-token"}},
        {"range": {"event.severity": {"gte": 73}}}]}})["hits"]["hits"]
    assert [hit["_id"] for hit in hits] == ["inc-1"]
    assert hits[0]["_source"]["jitsec"]["incident"]["occurrences"] == 3  # version 2 came late and lost
    assert es.get(index=index, id="inc-1")["_version"] == 3
    mapping = es.indices.get_mapping(index=index)[index]["mappings"]["properties"]
    assert mapping["@timestamp"]["type"] == "date"
    assert mapping["rule"]["properties"]["id"]["type"] == "keyword"
    everything = json.dumps(es.search(index=index, size=10)["hits"]["hits"])
    assert secret not in everything


@pytest.mark.elasticsearch
def test_a_node_not_reachable_yet_delays_incidents(
    es: Elasticsearch,
    index: str,
    elasticsearch_url: str,
    tmp_path: Path,
    tcp_proxy: Callable[[str, int], Any],
) -> None:
    host, _, port = elasticsearch_url.removeprefix("http://").rpartition(":")
    proxy = tcp_proxy(host, int(port))  # not listening yet
    sink = ElasticsearchSink(f"http://127.0.0.1:{proxy.port}", tmp_path, index=index, backoff=FAST,
                             timeout=2.0)
    sink.send(make_incident(1)[0])
    sink.send(make_incident(2)[0])
    assert not sink.flush(timeout=1.0)
    assert sink.stats().pending == 2

    proxy.start()
    try:
        assert sink.flush(timeout=60)
    finally:
        sink.close()
    es.indices.refresh(index=index)
    assert es.count(index=index)["count"] == 2

