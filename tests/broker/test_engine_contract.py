"""The built-in store-backed engines pass the engine contract (tests/broker/engine_contract.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from jitsec.broker.engines.jwt import JwtEngine
from jitsec.broker.engines.jwt_keys import KeyRing
from jitsec.broker.engines.token import TokenEngine

from tests.broker.engine_contract import ContractCase, check_engine_contract


def test_the_token_engine_keeps_the_contract(caplog: pytest.LogCaptureFixture) -> None:
    check_engine_contract(ContractCase(engine=TokenEngine(), scopes=("reports:read",)), caplog)


def test_the_jwt_engine_keeps_the_contract(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    engine = JwtEngine(KeyRing(tmp_path / "keys"), "https://broker.test")
    check_engine_contract(
        ContractCase(engine=engine, scopes=("aud:reports", "reports:read"), bad_scopes=("reports",)), caplog)
