"""scripts/services takes several service names at once, and refuses a name it does not know."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "services"


@pytest.mark.postgres
@pytest.mark.kafka
def test_status_of_two_named_services_reports_both(postgres_dsn: str, kafka_bootstrap: str) -> None:
    done = subprocess.run(["bash", str(SCRIPT), "status", "kafka", "postgres"], capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    names = [line.split("=", 1)[0] for line in done.stdout.splitlines()]
    assert "JITSEC_TEST_KAFKA_BOOTSTRAP" in names and "JITSEC_TEST_POSTGRES_DSN" in names
    assert "JITSEC_TEST_ELASTICSEARCH_URL" not in names


def test_an_unknown_service_refuses_the_whole_call() -> None:
    done = subprocess.run(["bash", str(SCRIPT), "start", "kafka", "mongodb"], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 2 and "usage:" in done.stderr and done.stdout == ""
