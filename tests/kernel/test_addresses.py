"""Loopback or not: what decides whether plain HTTP to the broker earns a warning."""

from __future__ import annotations

import pytest

from jitsec.kernel.addresses import is_loopback


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "127.8.9.10", "::1", "[::1]", "LOCALHOST"])
def test_loopback_hosts(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.4", "broker.example.org", "", "127.0.0.1.nip.io"])  # noqa: S104
def test_other_hosts(host: str) -> None:
    assert not is_loopback(host)
