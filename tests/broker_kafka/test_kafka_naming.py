"""User names for leases: bounded, safe to write in a JAAS line, unique per lease, and carrying the
issue time the reconciler reads back."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jitsec.broker.engines.kafka_naming import MAX_USER_LENGTH, parse_user, user_name, validate_prefix

SAFE = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


@given(agent=st.text(max_size=120), task=st.text(max_size=120), lease=st.text(max_size=20),
       issued=st.integers(0, 2**35))
def test_names_are_bounded_safe_and_parse_back(agent: str, task: str, lease: str, issued: int) -> None:
    name = user_name("jitsec_", agent, task, lease, issued)
    assert len(name) <= MAX_USER_LENGTH
    assert set(name) <= SAFE
    mark = parse_user("jitsec_", name)
    assert mark is not None and mark.issued_at == issued


@given(lease_a=st.text(max_size=20), lease_b=st.text(max_size=20))
def test_two_leases_of_one_task_get_two_names(lease_a: str, lease_b: str) -> None:
    if lease_a != lease_b:
        long_agent, long_task = "a" * 90, "t" * 90  # cut to the same readable text
        assert user_name("jitsec_", long_agent, long_task, lease_a, 1) != user_name(
            "jitsec_", long_agent, long_task, lease_b, 1)


def test_a_name_says_agent_and_task() -> None:
    name = user_name("jitsec_", "report-bot", "task 42/é", "lease-1", 0)
    assert name.startswith("jitsec_report-bot_task-42--_")


NOT_OURS = ["jitsec", "alice", "jitsec_x", "jitsec_a_b_nothex0000_1", "jitsec_a_b_0123456789_",
            "jitsec_a_b_0123456789_ZZ", "jitsec_ab_0123456789_1"]


@pytest.mark.parametrize("name", NOT_OURS)
def test_other_users_carry_no_mark(name: str) -> None:
    assert parse_user("jitsec_", name) is None


@pytest.mark.parametrize("prefix", ["", "Jitsec_", "jit-sec_", "x" * 80])
def test_bad_prefixes_are_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match="prefix"):
        validate_prefix(prefix)
