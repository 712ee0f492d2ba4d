from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from jitsec.connectors.sinks.alert import ALERT_SCHEMA, AlertContext
from jitsec.connectors.sinks.factory import build_sink, parse_alert_spec
from jitsec.connectors.sinks.spool import Backoff
from jitsec.connectors.sinks.webhook import REPLAY_WINDOW, WebhookSink, verify_signature
from jsonschema import Draft7Validator, FormatChecker

from jitsec.kernel.records import Incident, ResponseAction


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
    assert body["incident_id"] == "inc-1"
    assert body["schema"] == "jitsec.alert/2"
    assert leaked_token not in str(body)
    [(headers, _)] = http_receiver.raw  # no secret configured: unsigned
    assert "X-Jitsec-Signature" not in headers and headers["X-Jitsec-Schema"] == ALERT_SCHEMA


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
    assert [body["incident_id"] for body in http_receiver.bodies] == [
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
    assert [body["incident_id"] for body in http_receiver.bodies] == ["inc-0", "inc-1", "inc-2"]


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


# -- the alert document, signing, Slack blocks --------------------------------------------------------

CONTEXT = AlertContext(scanner="logs-eu-1", host="scan-host-7", console_url="https://soc.example/",
                       remediations={"aws-access-key-id": "Deactivate the key in IAM."})
SECRET = b"s3cr3t-for-signing-only"
SCHEMA_FILE = Path(__file__).parents[3] / "docs" / "schemas" / "alert.schema.json"
ALERT_DOCUMENT = Draft7Validator(json.loads(SCHEMA_FILE.read_text(encoding="utf-8")),
                                 format_checker=FormatChecker())


def openssl_hmac(secret: bytes, message: bytes) -> str:
    """HMAC-SHA256 by OpenSSL's command line: an implementation independent of Python's ``hmac``."""
    done = subprocess.run(["openssl", "dgst", "-sha256", "-mac", "HMAC", "-macopt", f"hexkey:{secret.hex()}"],
                          input=message, capture_output=True, check=True)
    return done.stdout.decode().rsplit("= ", 1)[-1].strip()


def test_the_alert_document_has_iso_times_identity_remediation_and_a_console_link(
    tmp_path: Path, http_receiver, make_incident: Callable[..., Incident], leaked_token: str,
) -> None:
    http_receiver.start()
    sink = WebhookSink(http_receiver.url, tmp_path, context=CONTEXT)
    sink.send(make_incident(1, first_seen=1_796_231_859.56, last_seen=1_796_231_860.0))
    sink.send(make_incident(2, rule_id="aws-access-key-id", action=ResponseAction.ALERT_ONLY, lease_id=None))
    assert sink.flush(10)
    sink.close()
    first, second = http_receiver.bodies
    for body in http_receiver.bodies:  # the schema docs/alerts.md documents
        ALERT_DOCUMENT.validate(body)
    assert not ALERT_DOCUMENT.is_valid({**first, "first_seen": 1_796_231_859.56})  # an epoch float is not one
    assert first["schema"] == ALERT_SCHEMA
    assert first["first_seen"] == "2026-12-02T17:17:39.560Z"
    assert first["last_seen"] == "2026-12-02T17:17:40.000Z"
    assert first["revoked_at"] == "2023-11-14T22:13:20.500Z"
    assert first["scanner"] == {"name": "logs-eu-1", "host": "scan-host-7"}
    assert first["console_url"] == "https://soc.example/console/incidents/inc-1"
    assert "already revoked" in first["remediation"] and "lease-1" in first["remediation"]
    assert second["remediation"] == "Deactivate the key in IAM."
    assert leaked_token not in json.dumps(http_receiver.bodies)


def test_a_signed_alert_verifies_with_an_independent_hmac_and_within_the_window(
    tmp_path: Path, http_receiver, make_incident: Callable[..., Incident],
) -> None:
    http_receiver.start()
    sink = WebhookSink(http_receiver.url, tmp_path, secret=SECRET, context=CONTEXT)
    sink.send(make_incident(1))
    assert sink.flush(10)
    sink.close()
    [(headers, body)] = http_receiver.raw
    timestamp = headers["X-Jitsec-Timestamp"]
    assert abs(int(timestamp) - time.time()) < REPLAY_WINDOW
    assert headers["X-Jitsec-Signature"] == "v1=" + openssl_hmac(SECRET, timestamp.encode() + b"." + body)
    assert verify_signature(SECRET, headers, body)
    assert not verify_signature(SECRET, headers, body + b" ")  # a changed body
    assert not verify_signature(b"another secret", headers, body)
    assert not verify_signature(SECRET, headers, body, now=int(timestamp) + REPLAY_WINDOW + 1)  # a replay
    assert SECRET.decode() not in body.decode()


def test_the_spec_reads_the_secret_from_the_environment_and_the_slack_format(
    tmp_path: Path, http_receiver, make_incident: Callable[..., Incident], leaked_token: str,
) -> None:
    http_receiver.start()
    env = {"SOC_HOOK_KEY": SECRET.decode()}
    sink = build_sink(f"webhook:{http_receiver.url}#format=slack&secret_env=SOC_HOOK_KEY", tmp_path,
                      context=CONTEXT, env=env)
    sink.send(make_incident(1, locations=("/var/log/<b>&agent.log:12", "/other:1")))
    assert sink.flush(10)
    sink.close()
    [(headers, body)] = http_receiver.raw
    assert verify_signature(SECRET, headers, body)
    assert "X-Jitsec-Schema" not in headers  # a Slack body is not the alert document
    slack = json.loads(body)
    assert set(slack) == {"text", "blocks"}
    assert [block["type"] for block in slack["blocks"]] == ["header", "section", "section", "context"]
    fields = "\n".join(field["text"] for field in slack["blocks"][1]["fields"])
    assert "*Rule*\n`jitsec-engine-token`" in fields and "*Action*\nrevoked" in fields
    assert "`/var/log/&lt;b&gt;&amp;agent.log:12` (+1 more)" in fields  # escaped: no markup from a path
    assert "jit_" in fields and leaked_token not in body.decode()
    assert "<https://soc.example/console/incidents/inc-1|open in the console>" in (
        slack["blocks"][3]["elements"][0]["text"])


@pytest.mark.parametrize("spec", ["webhook:https://h/x#format=xml", "webhook:https://h/x#colour=red",
                                  "webhook:https://h/x#secret_env="])
def test_bad_webhook_options_are_refused_when_parsed(spec: str) -> None:
    with pytest.raises(ValueError, match="webhook option"):
        parse_alert_spec(spec)


def test_a_named_secret_variable_that_is_unset_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\$MISSING_KEY is not set"):
        build_sink("webhook:https://h/x#secret_env=MISSING_KEY", tmp_path, env={})
