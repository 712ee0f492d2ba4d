"""The suite against the project's own broker (SQLite store, token engine, PostgreSQL engine on the
real cluster): every test passes, the report reaches the advanced level, and no report file holds a
secret the run handled (searched with the project's scanner and for every secret of the run)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from jitsec.conformance.report import write_reports
from jitsec.conformance.search import SecretSearch

pytestmark = pytest.mark.postgres
CI_REPORT_DIR = Path(__file__).resolve().parents[2] / "reports" / "conformance"


def test_every_test_passes_against_the_project_broker(deployment, tmp_path: Path) -> None:
    report, ledger = deployment.run(tmp_path)
    failing = {
        r.test_id: [c.name for c in r.checks if not c.passed] or r.error
        for r in report.results
        if not r.passed
    }
    assert failing == {}
    assert [r.test_id for r in report.results] == ["8.1", "8.2", "8.3", "8.4", "8.5", "8.6", "8.7"]
    assert report.score == 100.0
    completion_checks = [c.name for c in report.results[1].checks]
    assert "client certificate listed in the CRL after completion" in completion_checks  # --x509
    assert "SSH certificate listed in the KRL after completion" in completion_checks  # --ssh
    assert "SSH certificate not in the KRL before completion" in completion_checks
    assert report.maturity.level == "advanced"
    latency = float(report.results[-1].fact("leak_latency_ms") or "nan")
    assert 0 < latency < 10_000
    assert int(report.results[5].fact("candidates") or 0) >= 1  # the memory image held dead credentials
    completion = report.results[1]  # 8.2 held a JWT too (the deployment offers the jwt engine)
    assert sum(1 for c in completion.checks if c.name.endswith("dead after completion")) == 3
    assert not [note for note in completion.notes if "jwt" in note or "--ssh" in note]
    paths = write_reports(report, tmp_path / "report", secrets=ledger.values())
    data = json.loads(paths["json"].read_text())
    assert data["passed"] is True and data["maturity"]["level"] == "advanced"
    assert len(ledger) > 20
    from jitsec.conformance.context import Context  # noqa: PLC0415

    scanner = Context(deployment.settings(tmp_path), tmp_path).scanner()
    search = SecretSearch(scanner, ledger.values())
    for path in paths.values():
        blob = path.read_bytes()
        assert search.known_hits(blob, path.name) == []
        assert [c for c in search.candidates(blob, path.name) if c.value in search.known_values] == []
    keep = os.environ.get("JITSEC_CONFORMANCE_REPORT_DIR") or (
        str(CI_REPORT_DIR) if os.environ.get("CI") else ""
    )
    if keep:  # CI keeps the report as an artefact (reports/ is git-ignored)
        shutil.copytree(tmp_path / "report", keep, dirs_exist_ok=True)


def test_cli_runs_selected_tests_and_writes_reports(deployment, tmp_path: Path) -> None:
    from click.testing import CliRunner  # noqa: PLC0415

    from jitsec.cli import main  # noqa: PLC0415

    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"keys": deployment.keys}))
    result = CliRunner().invoke(
        main,
        [
            "conformance",
            "--broker",
            deployment.url,
            "--config",
            str(deployment.config_path),
            "--postgres",
            deployment.postgres_dsn,
            "--keys-file",
            str(keys),
            "--report-dir",
            str(tmp_path / "out"),
            "--ssh",
            "ssh",
            "--only",
            "8.2",
            "--only",
            "8.3",
        ],
        env={"JITSEC_ORCHESTRATOR_KEY": None},
    )
    assert result.exit_code == 0, result.output
    assert "8.2 Task-completion revocation: PASS" in result.output
    completion = json.loads((tmp_path / "out" / "conformance.json").read_text())["results"][0]
    assert any(c["name"] == "SSH certificate listed in the KRL after completion" and c["passed"]
               for c in completion["checks"])
    assert {p.name for p in (tmp_path / "out").iterdir()} == {
        "conformance.md",
        "conformance.html",
        "conformance.json",
    }
    assert json.loads((tmp_path / "out" / "conformance.json").read_text())["score"] == pytest.approx(28.6)
