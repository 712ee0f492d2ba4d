"""Settings refuse what cannot work with a message that says what to do; keys never come from
arguments; reports escape hostile text and never carry a secret of the run."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner
from jitsec.broker.client import BrokerClient

from jitsec.cli import main
from jitsec.conformance.engine_probes import krl_listing, ssh_certificate_probe
from jitsec.conformance.maturity import assess, score
from jitsec.conformance.model import Check, ConformanceResult, Outcome, Report
from jitsec.conformance.policy import KAFKA_SCOPE, SSH_SCOPE
from jitsec.conformance.report import to_html, write_reports
from jitsec.conformance.settings import LeakTarget, PrincipalKeys, SettingsError, SuiteSettings
from jitsec.kernel.credential_format import CredentialKind, mint


def test_keys_from_environment_or_init_json(tmp_path: Path) -> None:
    keys = PrincipalKeys.load({"JITSEC_ORCHESTRATOR_KEY": "o", "JITSEC_ADMIN_KEY": "a"})
    assert (keys.orchestrator, keys.resource, keys.scanner) == ("o", "a", None)
    assert "o" not in repr(keys)
    path = tmp_path / "keys.json"
    path.write_text(json.dumps({"keys": {"orchestrator": "o2", "resource": "r2", "scanner": "s2"}}))
    keys = PrincipalKeys.load({}, keys_file=path)
    assert (keys.orchestrator, keys.resource, keys.scanner) == ("o2", "r2", "s2")
    with pytest.raises(SettingsError, match="JITSEC_ORCHESTRATOR_KEY"):
        PrincipalKeys.load({})
    path.write_text("[1]")
    with pytest.raises(SettingsError, match="keys"):
        PrincipalKeys.load({}, keys_file=path)


def test_leak_targets_and_bad_settings(tmp_path: Path) -> None:
    assert LeakTarget.parse("file:/var/log/a.log").path == Path("/var/log/a.log")
    kafka = LeakTarget.parse("kafka://127.0.0.1:9092/logs")
    assert (kafka.bootstrap, kafka.topic) == ("127.0.0.1:9092", "logs")
    for bad in ("file:", "kafka://host/", "s3://bucket"):
        with pytest.raises(SettingsError):
            LeakTarget.parse(bad)
    keys = PrincipalKeys("o", "r")
    with pytest.raises(SettingsError, match="http"):
        SuiteSettings(broker_url="ftp://x", keys=keys, report_dir=tmp_path)
    with pytest.raises(SettingsError, match="unknown test"):
        SuiteSettings(broker_url="http://x", keys=keys, report_dir=tmp_path, only=("9.9",))
    shown = dict(
        SuiteSettings(
            broker_url="http://x",
            keys=keys,
            report_dir=tmp_path,
            postgres_dsn="postgresql://u:pw@db:5433/app",
        ).public()
    )
    assert shown["postgres"] == "db:5433/app"


def _report(detail: str, outcome: Outcome = Outcome.PASSED) -> Report:
    result = ConformanceResult(
        "8.1",
        "Secret TTL enforcement",
        "4.2",
        outcome,
        1.0,
        checks=(Check("a check", outcome is Outcome.PASSED, detail),),
    )
    by_id = {"8.1": result}
    return Report("http://broker", 0.0, 1.0, (result,), score(by_id), assess(by_id, False))


def test_reports_escape_html_and_scrub_secrets(tmp_path: Path) -> None:
    secret = mint(CredentialKind.ENGINE_TOKEN)
    report = _report(f"<script>alert(1)</script> {secret}")
    assert "<script>" not in to_html(report)
    paths = write_reports(report, tmp_path, secrets=[secret])
    for path in paths.values():
        assert secret not in path.read_text()
    assert json.loads(paths["json"].read_text())["results"][0]["outcome"] == "passed"
    assert report.maturity.level == "none" and report.score == pytest.approx(14.3)


def test_cli_prints_the_policy_and_refuses_missing_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["conformance", "--print-policy"])
    assert result.exit_code == 0 and 'agent = "conformance-*"' in result.output
    for name in (
        "JITSEC_ORCHESTRATOR_KEY",
        "JITSEC_RESOURCE_KEY",
        "JITSEC_ADMIN_KEY",
        "JITSEC_CONFORMANCE_KEYS",
    ):
        monkeypatch.delenv(name, raising=False)
    result = runner.invoke(main, ["conformance", "--broker", "http://127.0.0.1:9"])
    assert result.exit_code == 2 and "JITSEC_ORCHESTRATOR_KEY" in result.output


def test_engine_settings_and_the_policy_they_need(tmp_path: Path) -> None:
    keys = PrincipalKeys("o", "r")
    with pytest.raises(SettingsError, match="needs --kafka"):
        SuiteSettings(broker_url="http://x", keys=keys, report_dir=tmp_path, kafka_bootstrap="k:9094")
    with pytest.raises(SettingsError, match="HOST:PORT"):
        SuiteSettings(broker_url="http://x", keys=keys, report_dir=tmp_path, kafka_engine="kafka",
                      kafka_bootstrap="k:ninety")
    shown = dict(SuiteSettings(broker_url="http://x", keys=keys, report_dir=tmp_path, ssh_engine="ssh",
                               kafka_engine="kafka", kafka_bootstrap="k:9094").public())
    assert (shown["ssh engine"], shown["kafka engine"]) == ("ssh", "kafka at k:9094")
    args = ["conformance", "--print-policy", "--ssh", "ssh-ca2", "--kafka", "kafka"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    engines = tomllib.loads(result.output)["policy"][0]["engines"]
    assert engines["ssh-ca2"]["scopes"] == [SSH_SCOPE] and engines["kafka"]["scopes"] == [KAFKA_SCOPE]


def test_a_krl_that_cannot_be_fetched_revokes_nothing() -> None:
    """Revocation is shown, not presumed: an unreachable KRL leaves the certificate counted as working."""
    unreachable = BrokerClient("http://127.0.0.1:9")
    try:
        listed, reason = krl_listing(unreachable, "ssh", "ssh-ed25519-cert-v01@openssh.com AAAA")
        assert listed is None and "could not be fetched" in reason
        assert ssh_certificate_probe(unreachable, "ssh", "ssh-ed25519-cert-v01@openssh.com AAAA").works
    finally:
        unreachable.close()
