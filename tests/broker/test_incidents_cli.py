"""``jitsec incidents`` against a real broker over HTTP: table and JSON output, status moves, the key
only from the environment, clear refusals (exit 2)."""

from __future__ import annotations

import json
from collections.abc import Callable

from click.testing import CliRunner

from jitsec.cli import main
from tests.broker.conftest import Running
from tests.broker.test_incidents_api import a_sighting


def test_an_analyst_lists_shows_and_works_an_incident(serve: Callable[..., Running]) -> None:
    running = serve()
    (outcome,) = running.client("scanner").report_sightings([a_sighting()])
    incident_id = outcome["incident_id"]
    env = {"JITSEC_BROKER_URL": running.url, "JITSEC_ANALYST_KEY": running.env.keys["analyst"]}
    runner = CliRunner()

    table = runner.invoke(main, ["incidents", "list"], env=env)
    acked = runner.invoke(main, ["incidents", "ack", incident_id, "--reason", "on it"], env=env)
    noted = runner.invoke(main, ["incidents", "note", incident_id, "bucket owner paged"], env=env)
    resolved = runner.invoke(main, ["incidents", "resolve", incident_id, "--json"], env=env)
    shown = runner.invoke(main, ["incidents", "show", incident_id], env=env)
    listed = runner.invoke(main, ["incidents", "list", "--json", "--status", "resolved"], env=env)

    assert table.exit_code == 0 and incident_id in table.output and "AKIA" in table.output
    assert acked.exit_code == 0 and "acknowledged" in acked.output
    assert noted.exit_code == 0
    assert json.loads(resolved.output)["status"] == "resolved"
    assert "bucket owner paged" in shown.output and "build-1" in shown.output
    assert [i["incident_id"] for i in json.loads(listed.output)["incidents"]] == [incident_id]


def test_refusals_exit_2_with_the_reason(serve: Callable[..., Running]) -> None:
    running = serve()
    (outcome,) = running.client("scanner").report_sightings([a_sighting()])
    runner = CliRunner()
    env = {"JITSEC_BROKER_URL": running.url, "JITSEC_ANALYST_KEY": running.env.keys["analyst"]}

    keyless = {"JITSEC_BROKER_URL": running.url, "JITSEC_ANALYST_KEY": "", "JITSEC_ADMIN_KEY": ""}
    no_key = runner.invoke(main, ["incidents", "list"], env=keyless)
    wrong = runner.invoke(main, ["incidents", "reopen", outcome["incident_id"]], env=env)

    assert no_key.exit_code == 2 and "JITSEC_ANALYST_KEY" in no_key.output
    assert wrong.exit_code == 2 and "invalid_transition" in wrong.output
