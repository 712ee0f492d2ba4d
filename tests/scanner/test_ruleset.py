from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from jitsec.scanner.ruleset import RuleError, default_packs_dir, load_ruleset, parse_pack

GOOD_RULE: dict[str, Any] = {
    "id": "demo-token",
    "description": "Demo token",
    "regex": r"\b(?P<secret>demo_[a-z0-9]{20})\b",
    "keywords": ["demo_"],
    "severity": "high",
    "example": [{"secret": "demo_abcdefghij0123456789"}],
    "counterexample": [{"secret": "demo_short"}],
}


def pack_with(**changes: Any) -> dict[str, Any]:
    rule = {**GOOD_RULE, **changes}
    rule = {k: v for k, v in rule.items() if v is not None}
    return {"pack": {"name": "demo", "description": "d"}, "rule": [rule]}


def test_sample_pack_loads_compiled_rules(ruleset) -> None:
    ids = [rule.id for rule in ruleset.rules]
    assert ids == ["sample-broker-token", "sample-aws-access-key-id", "sample-github-token",
                   "sample-password-assignment", "sample-private-key"]
    rule = ruleset.by_id("sample-password-assignment")
    assert rule.entropy == 2.5
    assert rule.keywords == ("password", "passwd", "pwd")
    assert rule.allowlist.stopwords == ("example",)
    assert rule.pattern.search("password=abcdefgh1")["secret"] == "abcdefgh1"
    assert ruleset.by_id("sample-private-key").multiline


def test_digest_is_stable_and_tracks_content(sample_pack: Path, tmp_path: Path) -> None:
    first = load_ruleset([sample_pack], include_default=False).digest
    assert first == load_ruleset([sample_pack], include_default=False).digest
    assert len(first) == 16
    changed = tmp_path / "changed.toml"
    changed.write_text(sample_pack.read_text().replace("entropy = 2.5", "entropy = 3.0"))
    assert load_ruleset([changed], include_default=False).digest != first
    # Examples and descriptions do not change what is matched, so they leave the digest alone.
    described = tmp_path / "described.toml"
    described.write_text(sample_pack.read_text().replace('"AWS access key ID"', '"AWS key"'))
    assert load_ruleset([described], include_default=False).digest == first


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"id": "Not_Kebab"}, "id", "kebab-case"),
        ({"regex": r"demo_[a-z]+"}, "regex", "named group `secret`"),
        ({"regex": r"(?P<secret>[a-z"}, "regex", "does not compile"),
        ({"keywords": []}, "keywords", "at least one"),
        ({"severity": "urgent"}, "severity", "one of"),
        ({"entropy": 12}, "entropy", "between 0 and 8"),
        ({"validator": "os.system"}, "validator", "unknown validator"),
        ({"judge": "os.system"}, "judge", "unknown judge"),
        ({"judge": ["password"]}, "judge", "unknown judge"),
        ({"multiline": "yes"}, "multiline", "true or false"),
        ({"example": None}, "example", "at least one"),
        ({"counterexample": []}, "counterexample", "at least one"),
        ({"example": [{"key": "x"}]}, "example[0]", "needs `secret` or `text`"),
        ({"example": [{"secret": "abc", "contexts": ["xml"]}]}, "example[0].contexts", "drawn from"),
        ({"import": "evil.module"}, "import", "unknown field"),
        ({"allowlist": {"regexes": ["("]}}, "allowlist.regexes", "does not compile"),
        ({"revoke": "http://example.org/keys"}, "revoke", "https:// address"),
        ({"revoke": "javascript:alert(1)"}, "revoke", "https:// address"),
        ({"revoke": 42}, "revoke", "non-empty string"),
        ({"remediation": ["rotate"]}, "remediation", "non-empty string"),
    ],
)
def test_errors_name_pack_rule_and_field(changes: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(RuleError) as caught:
        parse_pack(pack_with(**changes), "demo.toml")
    error = caught.value
    assert error.pack == "demo"
    assert error.field == field
    assert words in str(error)
    assert "pack 'demo'" in str(error) and f"field '{field}'" in str(error)


def test_duplicate_rule_ids_across_packs_are_rejected(sample_pack: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.toml"
    other.write_text(sample_pack.read_text().replace('name = "engine-sample"', 'name = "other"'))
    with pytest.raises(RuleError, match="duplicate rule id"):
        load_ruleset([sample_pack, other], include_default=False)


def test_bad_toml_and_missing_file_name_the_pack(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("[pack\nname=")
    with pytest.raises(RuleError, match="not valid TOML") as caught:
        load_ruleset([broken], include_default=False)
    assert str(broken) in str(caught.value)
    with pytest.raises(RuleError, match="cannot read"):
        load_ruleset([tmp_path / "missing.toml"], include_default=False)


def test_default_packs_are_the_data_of_the_installed_rules_package() -> None:
    import jitsec.rules  # noqa: PLC0415

    assert default_packs_dir().name == "rules"
    assert default_packs_dir() == Path(jitsec.rules.__file__).parent
    assert (default_packs_dir() / "broker.toml").is_file()


def test_default_packs_load_when_present() -> None:
    paths = sorted(default_packs_dir().glob("*.toml"))
    if not paths:
        pytest.skip("no default packs in rules/ yet")
    ruleset = load_ruleset()
    assert ruleset.rules
    for path in paths:
        assert tomllib.loads(path.read_text())["pack"]["name"] in ruleset.packs


def test_a_rule_names_where_its_credentials_are_revoked_without_changing_the_digest() -> None:
    plain = parse_pack(pack_with(), "demo.toml")[1][0]
    linked = parse_pack(pack_with(revoke="https://example.org/settings/keys"), "demo.toml")[1][0]
    assert (plain.revoke, linked.revoke) == ("", "https://example.org/settings/keys")
    assert plain.canonical() == linked.canonical()  # reports only: what is matched stays the same
