from __future__ import annotations

import re
from pathlib import Path

import pytest
from jitsec.scanner.engine import Scanner
from jitsec.scanner.gitleaks import read_gitleaks_config
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


GLOBAL = '''
[extend]
useDefault = true

[allowlist]
description = "project-wide"
paths = [\'\'\'(^|/)testdata/\'\'\']
regexes = [\'\'\'^AKIA2OGYBAH6\'\'\']
stopwords = ["notreal"]
commits = ["ABCDEF1234567"]

[[allowlists]]
regexTarget = "line"
regexes = [\'\'\'# fixture\'\'\']

[[allowlists]]
condition = "AND"
regexes = [\'\'\'.\'\'\']
paths = [\'\'\'.\'\'\']

[[rules]]
id = "team-token"
regex = \'\'\'team_token=([a-z0-9]{24})\'\'\'
path = \'\'\'\\.env$\'\'\'

[[rules]]
id = "pem-file"
path = \'\'\'\\.pem$\'\'\'

[unknownTable]
x = 1
'''


def test_global_allowlists_and_use_default_are_read(tmp_path: Path) -> None:
    config = tmp_path / "gitleaks.toml"
    config.write_text(GLOBAL)
    read = read_gitleaks_config(config)
    assert read.use_default and [r.id for r in read.rules] == ["gitleaks-team-token"]
    assert read.commits == {"abcdef1234567"} and read.paths[0].search("a/testdata/x.txt")
    assert read.content.allows("AKIA2OGYBAH6STMMNXNN", "", "")
    assert read.content.allows("value", "x = value  # fixture", "")  # regexTarget = "line"
    assert read.content.allows("NotRealAtAll", "", "")
    assert not read.content.allows("value", "x = value", "value")  # the AND allowlist is left out


def test_what_jitsec_leaves_out_is_a_warning_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "gitleaks.toml"
    config.write_text(GLOBAL)
    warnings = "\n".join(read_gitleaks_config(config).warnings)
    for key in ("unknownTable", "allowlists[1].condition", "'pem-file': path-only", "'team-token': path"):
        assert key in warnings, key


def test_use_default_loads_the_default_packs_even_without_default_rules(tmp_path: Path) -> None:
    config = tmp_path / "gitleaks.toml"
    config.write_text(GLOBAL)
    with_default = load_ruleset(include_default=False, gitleaks_config=config)
    config.write_text(GLOBAL.replace("useDefault = true", "useDefault = false"))
    without = load_ruleset(include_default=False, gitleaks_config=config)
    assert [r.id for r in without.rules] == ["gitleaks-team-token"]
    assert len(with_default.rules) > 10 and "aws-access-key-id" in {r.id for r in with_default.rules}


def test_a_config_of_allowlists_only_is_valid(tmp_path: Path) -> None:
    config = tmp_path / "gitleaks.toml"
    config.write_text('[allowlist]\nstopwords = ["example"]\n')
    assert read_gitleaks_config(config).rules == ()
    config.write_text('title = "nothing"\n')
    with pytest.raises(RuleError, match="no content rule"):
        read_gitleaks_config(config)


def test_a_rule_allowlist_jitsec_cannot_apply_exactly_is_left_out_loudly(tmp_path: Path) -> None:
    config = tmp_path / "gitleaks.toml"
    config.write_text("[[rules]]\nid = 'k'\nregex = '''k_([a-z]{8})'''\n"
                      "[rules.allowlist]\nregexTarget = 'line'\nregexes = ['''.''']\n")
    read = read_gitleaks_config(config)
    assert read.rules[0].allowlist.regexes == () and "allowlist.regexTarget" in read.warnings[0]


def test_bad_global_allowlist_values_name_the_key(tmp_path: Path) -> None:
    config = tmp_path / "gitleaks.toml"
    for body, key in (("[allowlist]\nregexes = ['(']", "allowlist.regexes[0]"),
                      ("[allowlist]\nregexTarget = 'file'", "allowlist.regexTarget"),
                      ("[extend]\nuseDefault = 'yes'", "extend.useDefault")):
        config.write_text(body + "\n")
        with pytest.raises(RuleError, match=f"field '{re.escape(key)}'"):
            read_gitleaks_config(config)
