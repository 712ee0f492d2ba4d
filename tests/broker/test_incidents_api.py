"""The incident API over real HTTP: scanners send sightings, analysts list, read and work incidents;
roles are enforced, input is bounded, and the fleet key is the same on every replica of a broker."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from jitsec.broker.client import BrokerAPIError

from jitsec.kernel.records import Confidence, Severity
from jitsec.kernel.sightings import Sighting, sighting_id
from tests.broker.conftest import Running

NOW = 1_800_000_000.0


def a_sighting(secret_no: int = 1, location: str = "deploy/app.env:4", *, host: str = "build-1",
               **changes: object) -> Sighting:
    fingerprint = f"hmac-sha256:{secret_no:064x}"
    values: dict[str, object] = dict(
        sighting_id=sighting_id(fingerprint, "file", location, host), fingerprint=fingerprint,
        key_id="00112233445566aa", rule_id="aws-access-key", description="AWS access key",
        severity=Severity.HIGH, confidence=Confidence.STRUCTURAL, preview="AKIA…(20 chars)",
        location=location, source="file", seen_at=NOW, scanner="jitsec-watch", host=host,
    )
    values.update(changes)
    return Sighting(**values)  # type: ignore[arg-type]


def test_a_scanner_reports_and_an_analyst_works_the_incident(serve: Callable[..., Running]) -> None:
    running = serve()
    scanner, analyst = running.client("scanner"), running.client("analyst")

    outcomes = scanner.report_sightings([a_sighting(), a_sighting(host="build-2")])
    again = scanner.report_sightings([a_sighting(host="build-2")])
    incident_id = outcomes[0]["incident_id"]
    page = analyst.incidents(status=["open"])
    acked = analyst.act_on_incident(incident_id, "ack", reason="looking")
    analyst.act_on_incident(incident_id, "assign", assignee="ana")
    analyst.act_on_incident(incident_id, "note", text="key of the staging bucket")
    resolved = analyst.act_on_incident(incident_id, "resolve", reason="rotated in IAM")
    detail = analyst.incident(incident_id)

    assert [(o["opened"], o["counted"]) for o in outcomes] == [(True, True), (False, True)]
    assert again[0]["counted"] is False
    assert [i["incident_id"] for i in page["incidents"]] == [incident_id]
    assert page["incidents"][0]["sightings"] == 2 and page["next_cursor"] is None
    assert acked["status"] == "acknowledged" and acked["status_by"] == "analyst-1"
    assert (resolved["status"], resolved["status_reason"], resolved["assignee"]) == (
        "resolved", "rotated in IAM", "ana")
    assert [s["host"] for s in detail["sightings"]] == ["build-1", "build-2"]
    assert [e["kind"] for e in detail["timeline"]] == [
        "opened", "seen", "status", "assigned", "note", "status"]


def test_moves_the_status_does_not_allow_are_409_and_unknown_incidents_404(
        serve: Callable[..., Running]) -> None:
    running = serve()
    (outcome,) = running.client("scanner").report_sightings([a_sighting()])
    analyst = running.client("analyst")

    with pytest.raises(BrokerAPIError) as reopened:
        analyst.act_on_incident(outcome["incident_id"], "reopen")
    with pytest.raises(BrokerAPIError) as unknown:
        analyst.incident("inc_00000000deadbeef")

    assert (reopened.value.status, reopened.value.code) == (409, "invalid_transition")
    assert (unknown.value.status, unknown.value.code) == (404, "unknown_incident")


def test_roles_scanners_send_analysts_read(serve: Callable[..., Running]) -> None:
    running = serve()
    (outcome,) = running.client("scanner").report_sightings([a_sighting()])

    refused = []
    for role, call in (("analyst", lambda c: c.report_sightings([a_sighting(2)])),
                       ("scanner", lambda c: c.incidents()),
                       ("orchestrator", lambda c: c.incident(outcome["incident_id"])),
                       ("analyst", lambda c: c.fingerprint_key())):
        with pytest.raises(BrokerAPIError) as error:
            call(running.client(role))
        refused.append(error.value.status)

    assert refused == [403, 403, 403, 403]
    assert running.client("admin").incidents()["incidents"][0]["incident_id"] == outcome["incident_id"]


def test_bad_sightings_are_refused_naming_the_field(serve: Callable[..., Running]) -> None:
    running = serve()
    good = {"sighting_id": "sgt_" + "0" * 32, "fingerprint": "hmac-sha256:" + "1" * 64, "rule_id": "r",
            "severity": "high", "confidence": "structural", "preview": "x…", "location": "a",
            "source": "file", "seen_at": NOW, "scanner": "s", "host": "h"}
    scanner = running.client("scanner")

    with pytest.raises(BrokerAPIError) as plaintext:
        scanner.request("POST", "/v1/incidents",
                        json={"sightings": [{**good, "fingerprint": "ghp_plaintextsecretvalue"}]})
    with pytest.raises(BrokerAPIError) as cursor:
        running.client("analyst").incidents(cursor="abc")

    assert plaintext.value.status == 422 and "fingerprint" in plaintext.value.detail
    assert "ghp_plaintextsecretvalue" not in plaintext.value.detail
    assert (cursor.value.status, cursor.value.code) == (422, "invalid_cursor")


def test_a_preview_that_looks_like_a_whole_secret_is_redacted_before_it_is_kept(
        serve: Callable[..., Running]) -> None:
    running = serve()
    leaked = "Zx9qT4mP2vL8nR6wK3jH5cB7"
    (outcome,) = running.client("scanner").report_sightings([a_sighting(preview=leaked)])

    shown = running.client("analyst").incident(outcome["incident_id"])["incident"]["preview"]

    assert leaked not in shown and shown.startswith("Zx9q")


def test_every_replica_gives_scanners_the_same_fleet_key(serve: Callable[..., Running]) -> None:
    first, second = serve(), serve()

    key = first.client("scanner").fingerprint_key()

    assert len(key) == 32 and key == second.client("scanner").fingerprint_key()


def test_the_incident_routes_are_in_the_openapi_document(serve: Callable[..., Running]) -> None:
    paths = serve().client().request("GET", "/openapi.json")["paths"]

    expected = {"/v1/incidents", "/v1/incidents/{incident_id}", "/v1/fingerprint-key"} | {
        f"/v1/incidents/{{incident_id}}/{action}"
        for action in ("ack", "resolve", "reopen", "false_positive", "assign", "note")}
    assert expected <= set(paths)


def test_sightings_are_counted_in_the_metrics_by_outcome(serve: Callable[..., Running]) -> None:
    running = serve()
    scanner = running.client("scanner")
    scanner.report_sightings([a_sighting(), a_sighting(host="build-2")])
    scanner.report_sightings([a_sighting()])

    text = httpx.get(f"{running.url}/metrics").text

    for outcome in ("opened", "seen", "known"):
        assert f'jitsec_broker_incident_sightings_total{{outcome="{outcome}"}} 1.0' in text
