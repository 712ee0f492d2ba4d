"""Fixtures for the scanner's tests: the sample pack (tests/scanner/packs), scanners on both engines."""

from __future__ import annotations

from pathlib import Path

import pytest
from jitsec.scanner.engine import Scanner
from jitsec.scanner.fingerprint import Fingerprinter
from jitsec.scanner.ruleset import RuleSet, load_ruleset

PACKS = Path(__file__).parent / "packs"


@pytest.fixture(scope="session")
def sample_pack() -> Path:
    return PACKS / "sample.toml"


@pytest.fixture(scope="session")
def ruleset(sample_pack: Path) -> RuleSet:
    return load_ruleset([sample_pack], include_default=False)


@pytest.fixture(scope="session")
def fingerprinter() -> Fingerprinter:
    return Fingerprinter(b"test-key-" * 4)


@pytest.fixture(scope="session")
def hs_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hs-cache")


@pytest.fixture(scope="session")
def hs_scanner(ruleset: RuleSet, fingerprinter: Fingerprinter, hs_cache: Path) -> Scanner:
    return Scanner(ruleset, fingerprinter, engine="hyperscan", cache_dir=hs_cache)


@pytest.fixture(scope="session")
def py_scanner(ruleset: RuleSet, fingerprinter: Fingerprinter) -> Scanner:
    return Scanner(ruleset, fingerprinter, engine="python")


@pytest.fixture(params=["hyperscan", "python"], scope="session")
def scanner(request: pytest.FixtureRequest, hs_scanner: Scanner, py_scanner: Scanner) -> Scanner:
    return hs_scanner if request.param == "hyperscan" else py_scanner


@pytest.fixture(autouse=True)
def _jitsec_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep fingerprint keys and caches of CLI runs out of the real home."""
    home = tmp_path / "jitsec-home"
    monkeypatch.setenv("JITSEC_HOME", str(home))
    monkeypatch.delenv("JITSEC_FINGERPRINT_KEY", raising=False)
    return home
