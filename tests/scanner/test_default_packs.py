"""The engine on the default packs in rules/: both paths agree, and the progress bar path works."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jitsec.scanner.engine import Scanner
from jitsec.scanner.fingerprint import Fingerprinter
from jitsec.scanner.ruleset import default_pack_paths, load_ruleset

from jitsec.cli import main
from jitsec.kernel.records import StreamOrigin

from .test_stream import documents, stream_scan

Scanners = tuple[Scanner, Scanner]
pytestmark = pytest.mark.skipif(not default_pack_paths(), reason="no default packs in rules/ yet")


@pytest.fixture(scope="module")
def default_scanners(tmp_path_factory: pytest.TempPathFactory) -> Scanners:
    ruleset = load_ruleset()
    fingerprinter = Fingerprinter(b"default-packs-key")
    cache = tmp_path_factory.mktemp("hs")
    return (Scanner(ruleset, fingerprinter, engine="hyperscan", cache_dir=cache),
            Scanner(ruleset, fingerprinter, engine="python"))


def keys(scanner: Scanner, data: bytes) -> list[tuple]:
    found = scanner.scan_bytes(data, StreamOrigin())
    return [(f.rule_id, f.line, f.column, f.offset, f.fingerprint) for f in found]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.lists(st.one_of(documents(), st.binary(max_size=120)), min_size=1, max_size=4).map(b"".join))
def test_both_paths_agree_on_the_default_packs(default_scanners: Scanners, data: bytes) -> None:
    hyperscan_path, python_path = default_scanners
    assert keys(hyperscan_path, data) == keys(python_path, data)


def test_default_rules_load_into_hyperscan_without_fallback(default_scanners: Scanners) -> None:
    assert default_scanners[0].matcher.fallback == []


def test_forced_progress_bar_does_not_disturb_output(tmp_path: Path) -> None:
    target = tmp_path / "in.log"
    target.write_text("nothing here\n" * 1000)
    args = ["scan", "--progress", "-f", "jsonl", str(target)]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0 and result.stdout == ""


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=documents(), cuts=st.lists(st.integers(0, 10_000), max_size=8))
def test_chunking_does_not_change_findings_on_the_default_packs(default_scanners: Scanners, data: bytes,
                                                                cuts: list[int]) -> None:
    scanner = default_scanners[0]
    assert stream_scan(scanner, data, cuts) == stream_scan(scanner, data, [])


def test_a_detect_secrets_baseline_is_not_itself_a_leak(default_scanners: Scanners) -> None:
    """Its `hashed_secret` values are SHA-1 digests, named as such: no rule may report them."""
    baseline = (
        b'{"results": {"app/settings.py": [{"type": "Secret Keyword", "filename": "app/settings.py",\n'
        b'  "hashed_secret": "5b2e6f1a9c0d4e3f8a7b6c5d4e3f2a1b0c9d8e7f", "is_verified": false,\n'
        b'  "line_number": 3}]}}\n'
    )
    for scanner in default_scanners:
        assert scanner.scan_bytes(baseline, StreamOrigin(".secrets.baseline")) == []
