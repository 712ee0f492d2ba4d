from __future__ import annotations

from pathlib import Path

import pytest
from jitsec.scanner.engine import Scanner
from jitsec.scanner.ruleset import RuleError, load_ruleset

from jitsec.kernel.records import StreamOrigin

CONFIG = '''
title = "team config"

[[rules]]
id = "team-token"
description = "Team service token"
regex = \'\'\'(?i)team[_-]?token\\s*[:=]\\s*['"]?([a-z0-9]{24})\'\'\'
keywords = ["team"]
entropy = 3.0

[rules.allowlist]
stopwords = ["aaaa"]

[[rules]]
id = "acme-key"
regex = \'\'\'(acme)_(key_[A-Z0-9]{10})\'\'\'
secretGroup = 2
keywords = ["acme_key"]

[[rules.allowlists]]
regexes = [\'\'\'^key_TEST\'\'\']

[[rules]]
id = "path-only"
path = \'\'\'\\.pem$\'\'\'
'''


@pytest.mark.parametrize("engine", ["hyperscan", "python"])
def test_gitleaks_rules_translate_and_match(tmp_path: Path, fingerprinter, engine: str) -> None:
    config = tmp_path / "gitleaks.toml"
    config.write_text(CONFIG)
    ruleset = load_ruleset(include_default=False, gitleaks_config=config)
    assert [r.id for r in ruleset.rules] == ["gitleaks-team-token", "gitleaks-acme-key"]
    assert ruleset.packs == ("gitleaks:gitleaks.toml",)
    scanner = Scanner(ruleset, fingerprinter, engine=engine, cache_dir=tmp_path / "cache")
    text = b"team_token = 'k3j4h5g6f7d8s9a0q1w2e3r4'\nx acme_key_AB12CD34EF\nacme_key_TEST123456\n"
    found = scanner.scan_bytes(text, StreamOrigin())
    assert [(f.rule_id, f.line) for f in found] == [("gitleaks-team-token", 1), ("gitleaks-acme-key", 2)]
    assert found[0].fingerprint == fingerprinter.fingerprint("k3j4h5g6f7d8s9a0q1w2e3r4")
    assert found[1].fingerprint == fingerprinter.fingerprint("key_AB12CD34EF")


def test_bad_gitleaks_config_names_the_rule_and_field(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[[rules]]\nid = "x"\nregex = "(a)"\nsecretGroup = 3\n')
    with pytest.raises(RuleError, match="rule 'x', field 'secretGroup'"):
        load_ruleset(include_default=False, gitleaks_config=config)
