from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jitsec.connectors.sinks.spool import Backoff
from jitsec.connectors.sinks.syslog import SyslogSink, format_rfc5424, frame_octet_counting

from jitsec.kernel.records import Incident, Severity

RFC5424 = re.compile(
    rb"^<(?P<pri>\d{1,3})>1 (?P<ts>\S+) (?P<host>\S+) jitsec (?P<pid>\d+) incident "
    rb"\[jitsec@32473(?P<sd>(?:[^\]\\]|\\.)*)\] \xef\xbb\xbf(?P<msg>.*)$",
    re.S,
)


def test_the_message_is_rfc5424_with_structured_data(make_incident: Callable[..., Incident]) -> None:
    message = format_rfc5424(
        make_incident(1, severity=Severity.HIGH), hostname="scanner 1", procid=42,
        now=datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
    )
    match = RFC5424.match(message)
    assert match is not None
    assert match["pri"] == b"35"  # auth (4) * 8 + err (3)
    assert match["ts"] == b"2026-01-02T03:04:05.678Z"
    assert match["host"] == b"scanner1"
    assert b'id="inc-1"' in match["sd"] and b'lease="lease-1"' in match["sd"]
    assert b"revoked" in match["msg"]


def test_structured_data_values_are_escaped(make_incident: Callable[..., Incident]) -> None:
    message = format_rfc5424(make_incident(1, rule_id='a"b]c\\d'), hostname="h", procid=1)
    assert b'rule="a\\"b\\]c\\\\d"' in message


@given(
    rule=st.text(max_size=40) | st.sampled_from(['a]b', 'q"x', "back\\slash]"]),
    location=st.text(max_size=60),
    host=st.text(max_size=80),
)
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])  # a pure factory
def test_any_incident_makes_a_well_formed_message(
    make_incident: Callable[..., Incident], rule: str, location: str, host: str
) -> None:
    message = format_rfc5424(make_incident(1, rule_id=rule, locations=(location,)), hostname=host, procid=7)
    match = RFC5424.match(message)
    assert match is not None
    header = message.split(b"\xef\xbb\xbf", 1)[0]
    header.decode("ascii")  # header fields are ASCII whatever the input
    assert b'rule="' in match["sd"]


def test_octet_counting_frames_by_byte_length() -> None:
    assert frame_octet_counting("é".encode()) == b"2 \xc3\xa9"


def test_udp_delivers_to_a_real_listener(
    tmp_path: Path, syslog_receivers, make_incident: Callable[..., Incident], leaked_token: str,
    wait_for: Callable[..., bool],
) -> None:
    receiver = syslog_receivers("udp")
    receiver.start()
    sink = SyslogSink("127.0.0.1", receiver.port, tmp_path, protocol="udp")
    for number in range(3):
        sink.send(make_incident(number))
    assert sink.flush(10)
    assert wait_for(lambda: len(receiver.messages) == 3)
    sink.close()
    assert all(RFC5424.match(message) for message in receiver.messages)
    assert not any(leaked_token.encode() in message for message in receiver.messages)


def test_tcp_receiver_down_then_up_every_alert_arrives_once_in_order(
    tmp_path: Path, syslog_receivers, make_incident: Callable[..., Incident], fast_backoff: Backoff,
    wait_for: Callable[..., bool],
) -> None:
    receiver = syslog_receivers("tcp")
    sink = SyslogSink("127.0.0.1", receiver.port, tmp_path, protocol="tcp", backoff=fast_backoff)
    for number in range(5):
        sink.send(make_incident(number))
    assert not sink.flush(0.3)
    receiver.start()
    assert sink.flush(10)
    assert wait_for(lambda: len(receiver.messages) == 5)
    # the receiver goes away and comes back: the sink reconnects, nothing is lost or repeated
    receiver.stop()
    receiver.start()
    for number in range(5, 8):
        sink.send(make_incident(number))
    assert sink.flush(10)
    assert wait_for(lambda: len(receiver.messages) == 8)
    sink.close()
    ids = [re.search(rb'id="(inc-\d+)"', message)[1].decode() for message in receiver.messages]
    assert ids == [f"inc-{number}" for number in range(8)]
