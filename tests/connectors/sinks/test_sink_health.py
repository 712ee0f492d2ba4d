"""A failing alert sink is visible: `jitsec watch` answers /healthz `degraded`, /metrics shows the queue,
the age of the oldest alert and the failures, and shutdown says what stays spooled for the next start."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import httpx

from jitsec.kernel.credential_format import CredentialKind, mint
from jitsec.testing import wait_until
from tests.connectors.conftest import start_watch, watch_env  # noqa: F401 - fixtures

from .conftest import HttpReceiver, free_port


def metric(text: str, name: str) -> float:
    match = re.search(rf"^{name}\{{sink=\"webhook:[^\"]+\"\}} (\S+)$", text, re.M)
    assert match is not None, f"{name} missing from /metrics"
    return float(match.group(1))


def test_a_webhook_down_then_up_shows_in_healthz_metrics_and_the_shutdown_report(
    tmp_path: Path, http_receiver: HttpReceiver, start_watch, watch_env: dict[str, str],  # noqa: F811
) -> None:
    log = tmp_path / "app.log"
    log.write_text(f"token={mint(CredentialKind.ENGINE_TOKEN)}\n", encoding="utf-8")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    arguments = [str(log), "--alert", f"webhook:{http_receiver.url}", "--listen", f"127.0.0.1:{port}"]
    process, _, stderr = start_watch(arguments, watch_env)
    stderr.wait_for("health and metrics on", timeout=120)

    def health() -> dict:
        return httpx.get(f"{base}/healthz", timeout=5).json()

    assert wait_until(lambda: health()["status"] == "degraded", timeout=60)  # nobody listens yet
    [sink] = health()["sinks"].values()
    assert sink["failing"] and sink["queued"] == 1 and "unreachable" in sink["last_error"]
    text = httpx.get(f"{base}/metrics", timeout=5).text
    assert metric(text, "jitsec_alert_queue_depth") == 1
    assert metric(text, "jitsec_alert_delivery_failures_total") >= 1
    assert metric(text, "jitsec_alert_sink_failing") == 1
    assert wait_until(lambda: metric(httpx.get(f"{base}/metrics", timeout=5).text,
                                     "jitsec_alert_oldest_undelivered_seconds") > 0)

    http_receiver.start()
    assert wait_until(lambda: health()["status"] == "ok", timeout=60)
    assert len(http_receiver.bodies) == 1
    text = httpx.get(f"{base}/metrics", timeout=5).text
    assert metric(text, "jitsec_alert_queue_depth") == 0 and metric(text, "jitsec_alert_delivered_total") == 1
    assert metric(text, "jitsec_alert_oldest_undelivered_seconds") == 0

    http_receiver.stop()  # down again, and a new leak waits for it
    with log.open("a", encoding="utf-8") as out:
        out.write(f"token={mint(CredentialKind.ENGINE_TOKEN)}\n")
    assert wait_until(lambda: health()["status"] == "degraded", timeout=60)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0
    report = stderr.wait_for(r"(\d+) alert\(s\) undelivered to webhook:\S+ \(.*\); kept in (\S+), delivered")
    assert report.group(1) == "1" and Path(report.group(2).rstrip(",")).exists()

    http_receiver.start()  # the next start delivers what the last one kept
    again, _, again_err = start_watch([*arguments[:3], "--exit-when-idle", "1"], watch_env)
    assert again.wait(timeout=120) in (0, 1), "".join(again_err.lines)
    assert len(http_receiver.bodies) == 2
