"""Policy decisions (pure): scopes by glob, first matching agent entry wins, TTLs never above a maximum."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jitsec.broker.engines.base import EngineLimits
from jitsec.broker.errors import PolicyDenied
from jitsec.broker.policy import AgentPolicy, EnginePolicy, Policy

POLICY = Policy(
    entries=(
        AgentPolicy("demo-agent", 900, {"token": EnginePolicy(("reports:read", "reports:write"), 300, 900)}),
        AgentPolicy("ops-*", 600, {"token": EnginePolicy(("ops:*",), None, 60)}),
        AgentPolicy("*", 60, {}),
    )
)


def test_first_matching_entry_wins_and_globs_apply() -> None:
    assert POLICY.for_agent("ops-7").agent == "ops-*"
    assert POLICY.task_ttl("ops-7", ["ops:restart"], None) == 600
    with pytest.raises(PolicyDenied, match="may not hold scope 'reports:read'"):
        POLICY.task_ttl("ops-7", ["reports:read"], None)
    with pytest.raises(PolicyDenied, match="may not use engine 'token'"):
        POLICY.secret_ttl("stranger", "token", EngineLimits(), ["x:y"], None)


@given(
    limits=st.tuples(st.integers(1, 10_000), st.integers(1, 10_000)), ttl=st.none() | st.integers(1, 20_000)
)
def test_secret_ttl_never_exceeds_policy_or_engine_maximum(limits: tuple[int, int], ttl: int | None) -> None:
    default, maximum = min(limits), max(limits)
    engine_limits = EngineLimits(default_ttl_seconds=default, max_ttl_seconds=maximum)
    try:
        granted = POLICY.secret_ttl("demo-agent", "token", engine_limits, ["reports:read"], ttl)
    except PolicyDenied as error:
        assert ttl is not None and ttl > min(900, maximum)
        assert f"maximum of {min(900, maximum)} seconds" in str(error)
    else:
        assert 1 <= granted <= min(900, maximum)
        assert ttl is None or granted == ttl
