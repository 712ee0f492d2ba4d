"""A regex that backtracks catastrophically (a hostile gitleaks config in a pull request) cannot hang a
scan: the rule is stopped on that window, named, and the scan ends incomplete (exit 2)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from jitsec.scanner.engine import Scanner
from jitsec.scanner.fingerprint import Fingerprinter
from jitsec.scanner.ruleset import load_ruleset

from jitsec.kernel.records import StreamOrigin

HOSTILE = """
[[rules]]
id = "exponential"
description = "backtracks on a's followed by anything else"
regex = '''(a|aa)+$'''
"""


def test_a_catastrophic_regex_is_stopped_and_counted(tmp_path: Path) -> None:
    config = tmp_path / ".gitleaks.toml"
    config.write_text(HOSTILE)
    scanner = Scanner(load_ruleset(include_default=False, gitleaks_config=config), Fingerprinter(b"t" * 32),
                      engine="python", cache_dir=tmp_path)
    assert scanner.scan_bytes(b"a" * 40 + b"!\n", StreamOrigin("t")) == []
    assert scanner.stats.stopped == {"gitleaks-exponential": 1}


def test_jitsec_scan_names_the_stopped_rule_and_exits_incomplete(tmp_path: Path) -> None:
    config = tmp_path / ".gitleaks.toml"
    config.write_text(HOSTILE)
    target = tmp_path / "input.txt"
    target.write_text("a" * 40 + "!\nfine line\n")
    # the pure-Python matcher confirms every line; Hyperscan would rule this line out before Python
    command = [sys.executable, "-m", "jitsec", "scan", "--no-progress", "--engine", "python",
               "--gitleaks-config", str(config), str(target)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2, done.stderr
    assert "rule 'gitleaks-exponential' was stopped on 1 window(s)" in done.stderr
