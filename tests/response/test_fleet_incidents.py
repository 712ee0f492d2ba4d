"""The fleet's incidents from the scanner side, against a real broker over loopback HTTP: two scanner
processes that see one secret make one incident with both sightings; a broker that is away loses
nothing (the outbox delivers later) and counts nothing twice."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from jitsec.broker.client import BrokerClient
from jitsec.broker.incidents.model import IncidentFilters

from jitsec.kernel.records import Confidence, ResponseAction, Severity
from jitsec.kernel.sightings import Sighting, sighting_id
from jitsec.response.fleet import FLEET_KEY_FILE, FleetReporter, fleet_fingerprinter
from jitsec.testing import EmbeddedBroker

# the github-pat rule's own example
TOKEN = "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"  # pragma: allowlist secret


def scan(path: Path, broker: EmbeddedBroker, state: Path, name: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "JITSEC_BROKER_KEY": broker.keys["scanner"], "JITSEC_STATE_DIR": str(state),
           "JITSEC_SCANNER_NAME": name, "JITSEC_HOME": str(state.with_name(state.name + "-home"))}
    env.pop("JITSEC_FINGERPRINT_KEY", None)
    return subprocess.run([sys.executable, "-m", "jitsec", "scan", str(path), "--broker", broker.url],
                          env=env, capture_output=True, text=True, timeout=120, check=False)


def test_two_scanner_processes_seeing_one_secret_make_one_incident_with_both_sightings(
        tmp_path: Path, broker: EmbeddedBroker) -> None:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "ci.env").write_text(f"GITHUB_TOKEN={TOKEN}\n")

    first = scan(tmp_path / "a" / "ci.env", broker, tmp_path / "state-a", "scanner-a")
    second = scan(tmp_path / "b" / "ci.env", broker, tmp_path / "state-b", "scanner-b")
    again = scan(tmp_path / "b" / "ci.env", broker, tmp_path / "state-b", "scanner-b")

    assert (first.returncode, second.returncode, again.returncode) == (1, 1, 1), first.stderr
    desk = broker.broker.service.incidents
    page = desk.list(IncidentFilters(rule="github-pat"))
    assert len(page.items) == 1
    detail = desk.get(page.items[0].incident_id)
    assert detail is not None and detail.incident.sightings == 2
    assert sorted(s.scanner for s in detail.sightings) == ["scanner-a", "scanner-b"]
    assert TOKEN not in repr(detail) and TOKEN[:8] not in detail.incident.preview[5:]
    for state in ("state-a", "state-b"):
        assert (tmp_path / state / FLEET_KEY_FILE).stat().st_mode & 0o077 == 0
        for kept in (tmp_path / state).rglob("*"):  # outboxes, incident books: no plaintext anywhere
            assert not kept.is_file() or TOKEN.encode() not in kept.read_bytes()
    for kept in (tmp_path / "broker-dir").iterdir():
        assert TOKEN.encode() not in kept.read_bytes()


def a_sighting(number: int) -> Sighting:
    fingerprint = f"hmac-sha256:{number % 3:064x}"
    return Sighting(sighting_id(fingerprint, "kafka", f"kafka:logs/0@{number}", "h"), fingerprint, "",
                    "github-pat", "GitHub token", Severity.HIGH, Confidence.STRUCTURAL, "ghp_…(40 chars)",
                    f"kafka:logs/0@{number}", "kafka", 1_800_000_000.0 + number, "watch", "h",
                    ResponseAction.ALERT_ONLY)


def test_sightings_wait_on_disk_while_the_broker_is_away_and_arrive_once(tmp_path: Path) -> None:
    broker = EmbeddedBroker(tmp_path / "broker")  # not serving yet
    client = BrokerClient(broker.url, key=broker.keys["scanner"], timeout=1.0)
    sightings = [a_sighting(n) for n in range(12)]
    away = FleetReporter(client, tmp_path / "state", key_id="", host="h")
    away.report(sightings[:8])
    away.report(sightings[4:])  # a replay overlapping what is queued
    pending_at_exit = away.pending()
    away.close(timeout=0.2)

    broker.start()
    try:
        back = FleetReporter(client, tmp_path / "state", key_id="", host="h")
        delivered = back.wait_delivered(30)
        back.report(sightings)  # a restart without a checkpoint sends everything again
        assert back.wait_delivered(30)
        back.close()
        page = broker.broker.service.incidents.list()
    finally:
        client.close()
        broker.close()

    assert pending_at_exit == 2 and delivered
    assert len(page.items) == 3
    assert sorted(i.sightings for i in page.items) == [4, 4, 4]


def test_the_fleet_key_comes_from_the_broker_once_then_from_its_private_copy(
        tmp_path: Path, broker: EmbeddedBroker) -> None:
    with broker.client("scanner") as client:
        first = fleet_fingerprinter(client, tmp_path, env={})
    warnings: list[str] = []
    offline = BrokerClient("http://127.0.0.1:9", key=broker.keys["scanner"], timeout=0.5)
    cached = fleet_fingerprinter(offline, tmp_path, env={})
    nowhere = fleet_fingerprinter(offline, tmp_path / "empty", env={}, warn=warnings.append)
    team = fleet_fingerprinter(offline, tmp_path, env={"JITSEC_FINGERPRINT_KEY": "f" * 32})

    assert first is not None and cached is not None and first.shared
    assert first.fingerprint(TOKEN) == cached.fingerprint(TOKEN)
    assert nowhere is None and "will not match" in warnings[0]
    assert team is None
