"""Schemathesis against the live server's OpenAPI document: no 5xx, and every response (errors too)
matches the documented status codes, content types and schemas. Bounded: ~25 examples per operation.

``positive_data_acceptance`` is left out on purpose: a schema-valid task name can still be refused for
holding control or format characters, and a schema-valid request can be beyond policy (403)."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

EXAMPLES_PER_OPERATION = 25


@pytest.mark.slow
@pytest.mark.parametrize("role", ["orchestrator", "admin"])
def test_openapi_operations_hold_their_contract(serve, role: str) -> None:
    running = serve()
    schema = schemathesis.openapi.from_url(f"{running.url}/openapi.json")
    headers = {"Authorization": f"Bearer {running.env.keys[role]}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case) -> None:
            case.call_and_validate(
                base_url=running.url, headers=headers, excluded_checks=[positive_data_acceptance]
            )

        check()
