from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from jitsec.connectors.sinks.spool import Backoff
from jitsec.connectors.sinks.webhook import WebhookSink

from jitsec.kernel.records import Incident


def test_incidents_reach_a_real_http_receiver_with_a_slack_text(
    tmp_path: Path, http_receiver, make_incident: Callable[..., Incident], leaked_token: str,
) -> None:
    http_receiver.start()
    sink = WebhookSink(http_receiver.url, tmp_path)
    sink.send(make_incident(1))
    assert sink.flush(10)
    sink.close()
    [body] = http_receiver.bodies
    assert "revoked" in body["text"] and "lease lease-1" in body["text"]
    assert body["incident"]["incident_id"] == "inc-1"
    assert body["incident"]["schema"] == "jitsec.incident/1"
    assert leaked_token not in str(body)


def test_receiver_down_then_up_every_alert_arrives_once_in_order(
    tmp_path: Path, http_receiver, make_incident: Callable[..., Incident], fast_backoff: Backoff,
) -> None:
    sink = WebhookSink(http_receiver.url, tmp_path, backoff=fast_backoff)
    for number in range(10):
        sink.send(make_incident(number))
    assert not sink.flush(0.3)  # nobody listens yet: everything waits in the spool
    assert sink.stats().pending == 10
    http_receiver.start()
    assert sink.flush(10)
    sink.close()
    assert [body["incident"]["incident_id"] for body in http_receiver.bodies] == [
        f"inc-{number}" for number in range(10)
    ]


def test_server_errors_are_retried_until_accepted(
    tmp_path: Path, http_receiver, make_incident: Callable[..., Incident], fast_backoff: Backoff,
    wait_for: Callable[..., bool],
) -> None:
    http_receiver.status = 503
    http_receiver.start()
    sink = WebhookSink(http_receiver.url, tmp_path, backoff=fast_backoff)
    sink.send(make_incident(1))
    assert wait_for(lambda: sink.stats().failures >= 2)
    http_receiver.status = 200
    assert sink.flush(10)
    sink.close()
    assert len(http_receiver.bodies) == 1


def test_a_restarted_sink_delivers_alerts_spooled_by_the_previous_one(
    tmp_path: Path, http_receiver, make_incident: Callable[..., Incident], fast_backoff: Backoff,
) -> None:
    first = WebhookSink(http_receiver.url, tmp_path, backoff=fast_backoff)
    for number in range(3):
        first.send(make_incident(number))
    first.close(timeout=0.1)  # receiver down: the alerts stay on disk
    http_receiver.start()
    second = WebhookSink(http_receiver.url, tmp_path, backoff=fast_backoff)
    assert second.flush(10)
    second.close()
    assert [body["incident"]["incident_id"] for body in http_receiver.bodies] == ["inc-0", "inc-1", "inc-2"]


def test_a_client_error_sets_the_alert_aside_instead_of_blocking(
    tmp_path: Path, http_receiver, make_incident: Callable[..., Incident], fast_backoff: Backoff,
) -> None:
    http_receiver.status = 400
    http_receiver.start()
    sink = WebhookSink(http_receiver.url, tmp_path, backoff=fast_backoff)
    sink.send(make_incident(1))
    assert sink.flush(10)
    assert sink.stats().dead == 1
    sink.close()
