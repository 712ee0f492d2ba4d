"""Role names trace agent and task, fit PostgreSQL's 63 bytes, and differ for every lease."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jitsec.broker.engines.postgres_naming import DEFAULT_ROLE_PREFIX, role_name, validate_prefix

pytestmark = pytest.mark.postgres


def test_a_short_name_shows_agent_and_task_in_full() -> None:
    name = role_name(DEFAULT_ROLE_PREFIX, "billing-bot", "nightly", "lease_1")
    assert name.startswith("jitsec_billing-bot_nightly_")
    assert len(name) == len("jitsec_billing-bot_nightly_") + 10


@given(st.text(), st.text(), st.text(min_size=1))
def test_names_fit_63_bytes_keep_the_prefix_and_are_valid_utf8(agent: str, task: str, lease: str) -> None:
    name = role_name("jitsec_", agent, task, lease)
    encoded = name.encode("utf-8")
    assert len(encoded) <= 63
    assert name.startswith("jitsec_")
    assert "\x00" not in name


@given(st.text(), st.text(), st.text(min_size=1), st.text(min_size=1))
def test_different_leases_get_different_names(agent: str, task: str, lease_a: str, lease_b: str) -> None:
    if lease_a != lease_b:
        assert role_name("jitsec_", agent, task, lease_a) != role_name("jitsec_", agent, task, lease_b)


def test_long_unicode_names_are_cut_on_character_boundaries() -> None:
    name = role_name("jitsec_", "é" * 50, "日本" * 30, "lease")
    assert len(name.encode("utf-8")) <= 63
    assert "é" in name and "日" in name


@pytest.mark.parametrize("prefix", ["", "Jitsec_", "jit-", "x" * 50, "ä_"])
def test_bad_prefixes_are_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match="prefix"):
        validate_prefix(prefix)
