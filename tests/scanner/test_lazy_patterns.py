"""A pack's regexes compile at its first load, and on first use at later loads of the same text."""

from __future__ import annotations

import marshal
from pathlib import Path

import pytest
from jitsec.scanner.engine import Scanner
from jitsec.scanner.fingerprint import Fingerprinter
from jitsec.scanner.ruleset import LazyPattern, RuleError, RuleSet, load_ruleset

from jitsec.kernel.records import StreamOrigin

AWS_LINE = b"aws_access_key_id=AKIA2OGYBAH6STMMNXNN password=Zq8#vR2!mK9pL4wXy\n"


@pytest.fixture
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("JITSEC_HOME", str(tmp_path / "home"))
    return tmp_path / "home" / "cache"


def compiled(ruleset: RuleSet) -> list[bool]:
    return [isinstance(rule.pattern, LazyPattern) and rule.pattern._compiled is not None
            for rule in ruleset.rules]


def findings(ruleset: RuleSet, cache: Path) -> list[tuple]:
    scanner = Scanner(ruleset, Fingerprinter(b"lazy-" * 8), engine="hyperscan", cache_dir=cache)
    return [(f.rule_id, f.offset, f.fingerprint) for f in scanner.scan_bytes(AWS_LINE, StreamOrigin("t"))]


def test_the_second_load_compiles_only_what_a_scan_needs(sample_pack: Path, cache_home: Path) -> None:
    first = load_ruleset([sample_pack], include_default=False)
    assert all(compiled(first))  # validated whole, so an error would name pack, rule and field
    assert list((cache_home / "parsed-packs").iterdir())

    second = load_ruleset([sample_pack], include_default=False)
    assert not any(compiled(second))
    assert second.digest == first.digest  # whatever was compiled, the same rule set
    assert findings(second, cache_home) == findings(first, cache_home)
    used = {rule.id for rule, done in zip(second.rules, compiled(second), strict=True) if done}
    assert "sample-aws-access-key-id" in used
    assert used < {rule.id for rule in second.rules}  # rules without a candidate stayed uncompiled


def test_an_edited_pack_is_compiled_whole_again(sample_pack: Path, cache_home: Path, tmp_path: Path) -> None:
    load_ruleset([sample_pack], include_default=False)
    broken = tmp_path / "broken.toml"
    broken.write_text(sample_pack.read_text().replace("(?P<secret>", "(?P<secret>(", 1))
    with pytest.raises(RuleError, match=r"field 'regex': does not compile"):
        load_ruleset([broken], include_default=False)
    with pytest.raises(RuleError, match=r"field 'regex': does not compile"):  # and again: no marker for it
        load_ruleset([broken], include_default=False)


DAMAGES = ("{not json", '{"pack": {"name": "Not Kebab"}, "rule": []}',
           '{"pack": {"name": "sample"}, "rule": [{"id": "half-a-rule"}]}', "[]")


def test_a_damaged_cache_entry_is_read_past(sample_pack: Path, cache_home: Path) -> None:
    first = load_ruleset([sample_pack], include_default=False)
    (entry,) = (cache_home / "parsed-packs").iterdir()
    for damage in DAMAGES:
        entry.write_text(damage)
        for snapshot in (cache_home / "rulesets").iterdir():
            snapshot.unlink()
        again = load_ruleset([sample_pack], include_default=False)
        assert again.digest == first.digest and all(compiled(again))  # read from the TOML, validated


def test_a_second_load_of_the_same_texts_comes_from_one_snapshot(sample_pack: Path, cache_home: Path) -> None:
    first = load_ruleset([sample_pack], include_default=False)
    for entry in (cache_home / "parsed-packs").iterdir():
        entry.unlink()  # no per-pack entry: a load that does not parse came from the snapshot
    second = load_ruleset([sample_pack], include_default=False)
    assert not any(compiled(second))
    assert (second.digest, second.packs, second.published_examples) == (
        first.digest, first.packs, first.published_examples)
    assert [rule.id for rule in second.rules] == [rule.id for rule in first.rules]
    assert findings(second, cache_home) == findings(first, cache_home)


def test_a_damaged_snapshot_is_read_past(sample_pack: Path, cache_home: Path) -> None:
    first = load_ruleset([sample_pack], include_default=False)
    (snapshot,) = (cache_home / "rulesets").iterdir()
    shapes = ({"digest": "x", "names": [], "packs": [["p", {"pack": {}}]]}, [],
              {"digest": "x", "names": [], "packs": [["p", {"pack": {"name": "p"}, "rule": ["no"]}]],
               "published_examples": []})
    for damage in (*(text.encode() for text in DAMAGES), *map(marshal.dumps, shapes), b""):
        snapshot.write_bytes(damage)
        again = load_ruleset([sample_pack], include_default=False)
        assert again.digest == first.digest and [r.id for r in again.rules] == [r.id for r in first.rules]


def test_an_edited_pack_or_a_moved_one_gets_its_own_snapshot(
    sample_pack: Path, cache_home: Path, tmp_path: Path
) -> None:
    load_ruleset([sample_pack], include_default=False)
    edited = tmp_path / "edited.toml"
    edited.write_text(sample_pack.read_text().replace("severity = \"high\"", "severity = \"low\"", 1))
    assert load_ruleset([edited], include_default=False).digest != load_ruleset([sample_pack],
                                                                                include_default=False).digest
    assert len(list((cache_home / "rulesets").iterdir())) == 2
    moved = tmp_path / "moved.toml"
    moved.write_text(sample_pack.read_text())
    load_ruleset([moved], include_default=False)  # same text elsewhere: its own (errors name the path)
    assert len(list((cache_home / "rulesets").iterdir())) == 3


def test_a_cache_that_cannot_be_written_only_costs_the_next_load(
    sample_pack: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "home"
    blocker.write_text("a file where the cache directory would go")
    monkeypatch.setenv("JITSEC_HOME", str(blocker))
    for _ in range(2):
        ruleset = load_ruleset([sample_pack], include_default=False)
        assert all(compiled(ruleset))


def test_lazy_patterns_compare_by_source_and_flags() -> None:
    assert LazyPattern("a+", 2) == LazyPattern("a+", 2) != LazyPattern("a+", 0)
    assert hash(LazyPattern("a+", 2)) == hash(LazyPattern("a+", 2))
    assert LazyPattern(r"(?P<secret>b+)").search("abbb")["secret"] == "bbb"


def test_every_default_pack_rebuilt_from_the_cache_equals_the_validated_pack(cache_home: Path) -> None:
    validated = load_ruleset()
    cached = load_ruleset()
    assert not any(compiled(cached))
    assert cached.rules == validated.rules  # every field, examples included
    assert cached.digest == validated.digest
