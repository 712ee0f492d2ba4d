"""Fixtures shared by every area: where the real services are.

``scripts/services start`` prints the connection settings as KEY=VALUE lines and the test command
exports them. A test that needs a service and finds no setting fails under CI (``CI`` set) and is
skipped, with the reason, on a developer's machine that has not started the services.
"""

from __future__ import annotations

import os

import pytest


def _service_setting(name: str, service: str) -> str:
    value = os.environ.get(name)
    if value:
        return value
    message = f"{service} is not running: {name} is not set (run `scripts/services start {service}`)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    """A superuser DSN of the test cluster (the broker's engine and store tests create their own DBs)."""
    return _service_setting("JITSEC_TEST_POSTGRES_DSN", "postgres")


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    return _service_setting("JITSEC_TEST_KAFKA_BOOTSTRAP", "kafka")


@pytest.fixture(scope="session")
def elasticsearch_url() -> str:
    return _service_setting("JITSEC_TEST_ELASTICSEARCH_URL", "elasticsearch")
