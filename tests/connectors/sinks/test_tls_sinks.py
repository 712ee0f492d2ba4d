"""Syslog over TLS and Elasticsearch over HTTPS, against real TLS peers with a CA made for the test."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch
from jitsec.connectors.sinks.alert import AlertContext
from jitsec.connectors.sinks.elasticsearch import ElasticsearchSink, parse_elasticsearch_address
from jitsec.connectors.sinks.factory import build_sink, parse_alert_spec
from jitsec.connectors.sinks.spool import Backoff
from jitsec.connectors.sinks.syslog import SyslogSink

from jitsec.kernel.records import Incident
from jitsec.testing import wait_until

from .tls_peers import HttpsFront, MadeCa, TlsSyslogReceiver, make_ca

CONTEXT = AlertContext(scanner="logs-eu-1", host="scan-host-7", console_url="https://soc.example")


@pytest.fixture
def ca(tmp_path: Path) -> MadeCa:
    (tmp_path / "ca").mkdir()
    return make_ca(tmp_path / "ca")


@pytest.fixture
def tls_syslog(ca: MadeCa) -> Iterator[TlsSyslogReceiver]:
    receiver = TlsSyslogReceiver(ca)
    yield receiver
    receiver.stop()


# -- syslog over TLS (RFC 5425) ------------------------------------------------------------------------


def test_syslog_over_tls_delivers_octet_counted_frames_checked_against_the_ca(
    tmp_path: Path, ca: MadeCa, tls_syslog: TlsSyslogReceiver, make_incident: Callable[..., Incident],
    leaked_token: str,
) -> None:
    spec = f"syslog+tls://127.0.0.1:{tls_syslog.port}?ca={ca.ca_file}"
    assert parse_alert_spec(spec).kind == "syslog+tls"
    sink = build_sink(spec, tmp_path / "spool", context=CONTEXT)
    for number in range(3):
        sink.send(make_incident(number))
    assert isinstance(sink, SyslogSink) and sink.flush(10)
    sink.close()
    # flushed means written to the socket: the receiver's thread may still be reading the last frame
    assert wait_until(lambda: len(tls_syslog.messages) >= 3, timeout=10), tls_syslog.messages
    assert len(tls_syslog.messages) == 3
    first = tls_syslog.messages[0]
    assert first.startswith(b"<34>1 ") and b" scan-host-7 jitsec " in first
    assert b'scanner="logs-eu-1"' in first
    assert b'console="https://soc.example/console/incidents/inc-0"' in first
    assert b'first_seen="2023-11-14T22:13:20.000Z"' in first
    assert all(leaked_token.encode() not in message for message in tls_syslog.messages)


def test_syslog_over_tls_refuses_a_server_its_ca_did_not_sign(
    tmp_path: Path, tls_syslog: TlsSyslogReceiver, make_incident: Callable[..., Incident],
) -> None:
    (tmp_path / "other").mkdir()
    stranger = make_ca(tmp_path / "other")
    sink = SyslogSink("127.0.0.1", tls_syslog.port, tmp_path / "spool", protocol="tls",
                      ca_file=str(stranger.ca_file), backoff=Backoff(0.01, 0.1))
    sink.send(make_incident(1))
    assert wait_until(lambda: sink.stats().failures >= 2)
    assert tls_syslog.messages == [] and sink.stats().pending == 1
    assert "DeliveryError" in (sink.stats().last_error or "")
    sink.close(timeout=0.1)


@pytest.mark.parametrize("spec", ["syslog+tcp://h:514?ca=/x", "syslog+tls://h:514?cert=/x", "syslog+tls://h"])
def test_bad_syslog_specs_are_refused(spec: str) -> None:
    with pytest.raises(ValueError, match="syslog"):
        parse_alert_spec(spec)


# -- Elasticsearch over HTTPS with credentials ----------------------------------------------------------


def test_the_https_address_carries_ca_and_auth_and_refuses_what_makes_no_sense() -> None:
    address = parse_elasticsearch_address("elasticsearchs://es:9243/soc?ca=/etc/ca.pem&auth=apikey")
    assert (address.url, address.index, address.ca, address.auth) == ("https://es:9243", "soc", "/etc/ca.pem",
                                                                      "apikey")
    for bad in ("elasticsearch://es:9200/x?ca=/c", "elasticsearchs://es:9243/x?auth=basic",
                "elasticsearchs://es:9243/x?auth=token", "elasticsearchs://es:9243/x?colour=red"):
        with pytest.raises(ValueError, match="elasticsearch"):
            parse_elasticsearch_address(bad)
    with pytest.raises(ValueError, match=r"\$JITSEC_ES_API_KEY"):
        build_sink("elasticsearchs://es:9243/x?auth=apikey", Path("/nonexistent"), env={})


@pytest.fixture
def index(elasticsearch_url: str) -> Iterator[str]:
    name = f"jitsec-tls-test-{uuid.uuid4().hex[:10]}"
    yield name
    with Elasticsearch(elasticsearch_url, request_timeout=30) as es:
        es.indices.delete(index=name, ignore_unavailable=True)


@pytest.mark.elasticsearch
@pytest.mark.parametrize("auth", ["apikey", "basic"])
def test_elasticsearch_over_https_sends_the_credential_it_is_given(
    tmp_path: Path, ca: MadeCa, elasticsearch_url: str, index: str, auth: str, *,
    make_incident: Callable[..., Incident],
) -> None:
    api_key = base64.b64encode(b"key-id:key-secret").decode()
    basic = base64.b64encode(b"soc:pw-123").decode()
    expected = f"ApiKey {api_key}" if auth == "apikey" else f"Basic {basic}"
    front = HttpsFront(ca, elasticsearch_url, expected)
    try:
        query = f"ca={ca.ca_file}&auth={auth}" + ("&username=soc" if auth == "basic" else "")
        env = {"JITSEC_ES_API_KEY": api_key, "JITSEC_ES_PASSWORD": "pw-123"}
        sink = build_sink(f"elasticsearchs://127.0.0.1:{front.port}/{index}?{query}", tmp_path / "spool",
                          context=CONTEXT, env=env)
        assert isinstance(sink, ElasticsearchSink) and sink.url.startswith("https://")
        sink.send(make_incident(1))
        assert sink.flush(30)
        sink.close()
        assert front.authorizations and set(front.authorizations) == {expected}
        with Elasticsearch(elasticsearch_url, request_timeout=30) as es:
            document = es.get(index=index, id="inc-1")["_source"]
        assert document["observer"]["name"] == "logs-eu-1" and document["host"]["name"] == "scan-host-7"
        assert document["event"]["url"] == "https://soc.example/console/incidents/inc-1"
        assert "already revoked" in document["jitsec"]["remediation"]

        wrong = build_sink(f"elasticsearchs://127.0.0.1:{front.port}/{index}?{query}", tmp_path / "spool2",
                           env={"JITSEC_ES_API_KEY": "d3Jvbmc=", "JITSEC_ES_PASSWORD": "wrong"})
        wrong.send(make_incident(2))
        assert not wrong.flush(1.0)  # refused (401): kept in the spool, retried
        wrong.close(timeout=0.1)
    finally:
        front.stop()
