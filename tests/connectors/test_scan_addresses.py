from __future__ import annotations

from pathlib import Path

from jitsec.commands.scanning import scan_addresses
from jitsec.credential_format import mint
from scanner.baseline import Baseline
from scanner.engine import Scanner
from scanner.fingerprint import Fingerprinter
from scanner.ruleset import load_ruleset
from scanner.scan_job import ScanResult

PACK = Path(__file__).parent / "packs" / "broker.toml"


def test_git_address_is_scanned_once_with_baseline_and_errors(tmp_path: Path, git_repo) -> None:
    repo = tmp_path / "repo"
    (repo / "a.env").write_text(f"T={mint('jit_')}\n")
    (repo / "b.env").write_text(f"T={mint('jit_')}\n")
    git_repo("add", ".")
    git_repo("commit", "-q", "-m", "two leaks")
    scanner = Scanner(load_ruleset([PACK], include_default=False), Fingerprinter(b"f" * 32), engine="python")
    emitted = []
    result = ScanResult()
    scan_addresses([f"git:{repo}"], scanner, Baseline(), emitted.extend, result)
    assert result.findings == 2 and result.files == 2 and result.errors.total == 0
    accepted = Baseline(fingerprints=frozenset({emitted[0].fingerprint}))
    again = ScanResult()
    scan_addresses([f"git:{repo}"], scanner, accepted, lambda found: None, again)
    assert (again.findings, again.baselined) == (1, 1)
    broken = ScanResult()
    scan_addresses([f"git:{tmp_path / 'nothing'}"], scanner, Baseline(), lambda found: None, broken)
    assert broken.errors.counts == {"source": 1} and broken.exit_code == 2
