"""The pipeline's tests use the scanner's sample pack and a Hyperscan scanner over it."""

from __future__ import annotations

from pathlib import Path

import pytest
from jitsec.scanner.engine import Scanner
from jitsec.scanner.fingerprint import Fingerprinter
from jitsec.scanner.ruleset import load_ruleset

SAMPLE_PACK = Path(__file__).parents[1] / "scanner" / "packs" / "sample.toml"


@pytest.fixture(scope="session")
def hs_scanner(tmp_path_factory: pytest.TempPathFactory) -> Scanner:
    return Scanner(load_ruleset([SAMPLE_PACK], include_default=False), Fingerprinter(b"test-key-" * 4),
                   engine="hyperscan", cache_dir=tmp_path_factory.mktemp("hs-cache"))
