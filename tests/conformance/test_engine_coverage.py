"""8.2 with a kafka engine on the real Kafka's SASL listener (the deployment's ssh engine too): the
SCRAM-SHA-512 user logs in before completion and is refused after it; a kafka engine whose revocation
deletes nothing fails 8.2 on exactly that check. Only 8.2 holds a Kafka credential, so only 8.2 runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from jitsec.broker.engines.base import RevokeOutcome
from jitsec.broker.engines.kafka import KafkaEngine

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]

REFUSED = "Kafka login refused after completion"


def completion_checks(kafka_deployment, tmp_path: Path) -> dict[str, bool]:
    report, _ = kafka_deployment.run(tmp_path, only=("8.2",))
    [result] = report.results
    assert result.test_id == "8.2" and result.error is None
    return {check.name: check.passed for check in result.checks}


def test_completion_refuses_the_kafka_login_and_lists_the_ssh_certificate(
        kafka_deployment, tmp_path: Path) -> None:
    checks = completion_checks(kafka_deployment, tmp_path)
    assert [name for name, passed in checks.items() if not passed] == []
    assert checks["Kafka SCRAM-SHA-512 login works before completion"]
    assert checks[REFUSED] and checks["SSH certificate listed in the KRL after completion"]
    assert checks["the broker revoked every lease of the task at completion"]


def test_kafka_revocation_that_deletes_nothing_fails_8_2(
        kafka_deployment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(KafkaEngine, "revoke", lambda self, handle: RevokeOutcome.REVOKED)  # the user stays
    checks = completion_checks(kafka_deployment, tmp_path)
    assert [name for name, passed in checks.items() if not passed] == [REFUSED]
