"""Fixtures shared by the leak-response tests: a real broker served over loopback HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from jitsec.testing import EmbeddedBroker


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    """A throw-away broker (SQLite under ``tmp_path``, token engine, fresh keys), serving."""
    running = EmbeddedBroker(tmp_path / "broker-dir").start()
    yield running
    running.close()
