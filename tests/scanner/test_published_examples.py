"""Vendor-published example credentials are dropped by exact value, never a broker credential."""

from __future__ import annotations

import tomllib
from dataclasses import replace
from pathlib import Path

import pytest
from jitsec.scanner.engine import Scanner
from jitsec.scanner.fingerprint import Fingerprinter
from jitsec.scanner.ruleset import (
    RuleError,
    load_published_examples,
    load_ruleset,
    published_examples_path,
)

from jitsec.kernel.credential_format import mint
from jitsec.kernel.records import StreamOrigin


def _lines(value: str) -> list[bytes]:
    return [f"token={value}\n".encode(), f"Authorization: Bearer {value}\n".encode(),
            f'{{"aws_secret_access_key": "{value}"}}\n'.encode()]


def test_every_entry_names_its_vendor_and_where_it_was_published() -> None:
    entries = tomllib.loads(published_examples_path().read_text())["example"]
    assert len(entries) >= 8
    for entry in entries:
        assert entry["vendor"].strip() and len(entry["published"]) > 20
    assert load_published_examples() == {entry["value"] for entry in entries}


@pytest.mark.parametrize("engine", ["hyperscan", "python"])
def test_a_published_example_is_silent_and_the_same_shape_is_not(engine: str, tmp_path: Path) -> None:
    ruleset = load_ruleset()
    with_examples = Scanner(ruleset, Fingerprinter(b"e" * 32), engine=engine, cache_dir=tmp_path)
    without = Scanner(replace(ruleset, published_examples=frozenset()), Fingerprinter(b"e" * 32),
                      engine=engine, cache_dir=tmp_path)
    reported_without = 0
    for value in sorted(ruleset.published_examples):
        for line in _lines(value):
            assert with_examples.scan_bytes(line, StreamOrigin("t")) == []
            reported_without += len(without.scan_bytes(line, StreamOrigin("t")))
    assert reported_without > 0  # the examples are credential-shaped: the file is what keeps them quiet


def test_a_broker_credential_is_never_suppressed(tmp_path: Path) -> None:
    token = mint("jit_")
    ruleset = replace(load_ruleset(), published_examples=frozenset({token}))
    scanner = Scanner(ruleset, Fingerprinter(b"e" * 32), cache_dir=tmp_path)
    assert [f.rule_id for f in scanner.scan_bytes(f"t={token}\n".encode(), StreamOrigin("t"))] == [
        "broker-engine-token"]


def test_a_malformed_file_names_itself_and_the_entry(tmp_path: Path) -> None:
    bad = tmp_path / "examples.toml"
    bad.write_text('[[example]]\nvalue = "x"\nvendor = "v"\n')
    with pytest.raises(RuleError, match=r"examples.toml.*example #1.*value, vendor and published"):
        load_published_examples(bad)
    assert load_published_examples(tmp_path / "absent.toml") == frozenset()
