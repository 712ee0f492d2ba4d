"""The scanning commands with ``--broker`` and ``--alert``, against a real broker over loopback HTTP."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from jitsec.cli import main
from jitsec.testing import AGENT, EmbeddedBroker


def issue(broker: EmbeddedBroker) -> str:
    service = broker.broker.service
    started = service.start_task("orchestrator", AGENT, "report", ["reports:read"], 600)
    redeemed = service.redeem(started.task.task_id, started.grant)
    return service.issue(service.authenticate_task_token(redeemed.token), "token", ["reports:read"]).secret


def env_for(tmp_path: Path, broker: EmbeddedBroker | None) -> dict[str, str]:
    env = {"JITSEC_HOME": str(tmp_path / "home"), "JITSEC_STATE_DIR": str(tmp_path / "state")}
    if broker is not None:
        env["JITSEC_BROKER_URL"] = broker.url
        env["JITSEC_BROKER_KEY"] = broker.keys["scanner"]
    return env


def test_watch_with_a_broker_revokes_and_alerts(tmp_path: Path, broker: EmbeddedBroker) -> None:
    token, other = issue(broker), issue(broker)
    log = tmp_path / "app.log"
    log.write_text(f"level=debug auth=Bearer {token}\nnothing here\n")
    alerts = tmp_path / "alerts.jsonl"
    result = CliRunner().invoke(
        main, ["watch", str(log), "--alert", f"jsonl:{alerts}", "-f", "jsonl", "--exit-when-idle", "1"],
        env=env_for(tmp_path, broker), catch_exceptions=False,
    )
    assert result.exit_code == 1, result.output
    findings = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    broker_findings = [f for f in findings if f.get("broker")]
    assert broker_findings and {f["broker"] for f in broker_findings} == {"revoked"}
    assert not broker.broker.service.introspect(token, "t").active
    assert broker.broker.service.introspect(other, "t").active  # only what leaked dies
    incidents = [json.loads(line) for line in alerts.read_text().splitlines()]
    assert len({i["incident_id"] for i in incidents}) == 1  # one secret, one incident
    assert incidents[-1]["action"] == "revoked"
    assert token not in result.output and token not in alerts.read_text()


def test_a_broker_without_a_key_is_refused_at_start(tmp_path: Path, broker: EmbeddedBroker) -> None:
    env = env_for(tmp_path, broker)
    env["JITSEC_BROKER_KEY"] = ""
    log = tmp_path / "app.log"
    log.write_text("x\n")
    result = CliRunner().invoke(main, ["watch", str(log), "--exit-when-idle", "0.2"], env=env)
    assert result.exit_code == 2
    assert "JITSEC_BROKER_KEY" in result.output


def test_a_bad_alert_spec_is_a_usage_error(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("x\n")
    result = CliRunner().invoke(main, ["watch", str(log), "--alert", "pager:duty"],
                                env=env_for(tmp_path, None))
    assert result.exit_code == 2 and "--alert" in result.output


def test_scan_with_a_broker_revokes_and_marks_findings(tmp_path: Path, broker: EmbeddedBroker) -> None:
    token = issue(broker)
    config = tmp_path / "settings.env"
    config.write_text(f"API_TOKEN={token}\n")
    alerts = tmp_path / "alerts.jsonl"
    result = CliRunner().invoke(
        main, ["scan", str(config), "-f", "jsonl", "--engine", "python", "--alert", f"jsonl:{alerts}"],
        env=env_for(tmp_path, broker), catch_exceptions=False,
    )
    assert result.exit_code == 1, result.output
    findings = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert {f["broker"] for f in findings if f.get("credential_lookup")} == {"revoked"}
    assert not broker.broker.service.introspect(token, "t").active
    assert json.loads(alerts.read_text().splitlines()[-1])["action"] == "revoked"
    assert token not in result.output


def test_scan_without_a_broker_marks_broker_format_hits_unknown(
    tmp_path: Path, broker: EmbeddedBroker
) -> None:
    token = issue(broker)
    config = tmp_path / "settings.env"
    config.write_text(f"API_TOKEN={token}\n")
    result = CliRunner().invoke(main, ["scan", str(config), "-f", "jsonl", "--engine", "python"],
                                env=env_for(tmp_path, None), catch_exceptions=False)
    assert result.exit_code == 1, result.output
    findings = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert {f["broker"] for f in findings if f.get("credential_lookup")} == {"unknown"}
    assert broker.broker.service.introspect(token, "t").active
