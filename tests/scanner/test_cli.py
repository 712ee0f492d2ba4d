from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from jitsec.cli import main
from jitsec.kernel.credential_format import CredentialKind, mint

AWS = "AKIA2OGYBAH6STMMNXNN"


@pytest.fixture
def rules_args(sample_pack: Path) -> list[str]:
    return ["--no-default-rules", "--rules", str(sample_pack)]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "src" / "deep").mkdir(parents=True)
    (root / "src" / "app.py").write_text(f'KEY = "{AWS}"\n')
    (root / "src" / "deep" / "clean.txt").write_text("nothing to see\n" * 50)
    (root / "src" / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00" + os.urandom(64))
    (root / "notes.md").write_text(f"token {mint(CredentialKind.ENGINE_TOKEN)}\n")
    return root


def invoke(args: list[str], stdin: bytes | None = None):
    return CliRunner().invoke(main, args, input=stdin, catch_exceptions=False)


def test_scan_directory_reports_findings_and_exits_1(tree: Path, rules_args: list[str]) -> None:
    result = invoke(["scan", *rules_args, "-j", "3", str(tree)])
    assert result.exit_code == 1
    assert "sample-aws-access-key-id" in result.stdout and "sample-broker-token" in result.stdout
    assert AWS not in result.output
    for words in ("2 findings", "1 binary skipped", "3 files"):
        assert words in result.stderr


def test_clean_scan_exits_0(tree: Path, rules_args: list[str]) -> None:
    result = invoke(["scan", *rules_args, str(tree / "src" / "deep")])
    assert result.exit_code == 0 and result.stdout == ""


def test_jsonl_to_file(tree: Path, rules_args: list[str], tmp_path: Path) -> None:
    out = tmp_path / "findings.jsonl"
    result = invoke(["scan", *rules_args, "-f", "jsonl", "-o", str(out), str(tree)])
    assert result.exit_code == 1
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert {row["rule"] for row in rows} == {"sample-aws-access-key-id", "sample-broker-token"}
    assert {Path(row["path"]).name for row in rows} == {"app.py", "notes.md"}


def test_sarif_output_is_valid_json(tree: Path, rules_args: list[str]) -> None:
    result = invoke(["scan", *rules_args, "-f", "sarif", str(tree)])
    assert json.loads(result.stdout)["runs"][0]["results"]


def test_stdin_is_scanned(rules_args: list[str]) -> None:
    result = invoke(["scan", *rules_args, "-f", "jsonl", "-"], stdin=f"a\nb={AWS}\n".encode())
    assert result.exit_code == 1
    row = json.loads(result.stdout)
    assert (row["path"], row["line"], row["column"]) == ("-", 2, 3)


def test_unreadable_paths_exit_2_but_findings_are_written(tree: Path, rules_args: list[str]) -> None:
    result = invoke(["scan", *rules_args, str(tree), str(tree / "missing.txt")])
    assert result.exit_code == 2
    assert "sample-aws-access-key-id" in result.stdout
    assert "could not read" in result.stderr and "missing.txt" in result.stderr


def test_invalid_rules_exit_2_naming_the_field(tmp_path: Path) -> None:
    pack = tmp_path / "bad.toml"
    pack.write_text('[pack]\nname = "bad"\n[[rule]]\nid = "x"\ndescription = "d"\nregex = "x"\n')
    result = invoke(["scan", "--no-default-rules", "--rules", str(pack), str(tmp_path)])
    assert result.exit_code == 2
    assert "pack 'bad', rule 'x', field 'regex'" in result.stderr


def test_baseline_create_then_scan_reports_only_new_and_never_hides_a_broker_credential(
    tree: Path, rules_args: list[str], tmp_path: Path
) -> None:
    baseline = tmp_path / ".jitsec.baseline"
    created = invoke(["baseline", "create", *rules_args, "-o", str(baseline), str(tree)])
    assert created.exit_code == 0 and "wrote 2 entries" in created.stderr
    assert AWS not in baseline.read_text()
    first = invoke(["scan", *rules_args, "--baseline", str(baseline), "-f", "jsonl", str(tree)])
    # the AWS key is accepted; the broker credential never is: the broker always hears of it
    assert first.exit_code == 1 and "1 in baseline" in first.stderr
    assert [json.loads(row)["path"] for row in first.stdout.splitlines()] == [str(tree / "notes.md")]
    (tree / "new.env").write_text("AWS=AKIAZZZZZZZZZZZZZZZ2\n")
    again = invoke(["scan", *rules_args, "--baseline", str(baseline), "-f", "jsonl", str(tree)])
    assert again.exit_code == 1 and len(again.stdout.splitlines()) == 2 and "1 in baseline" in again.stderr


def test_detect_secrets_baseline_is_honoured(tree: Path, rules_args: list[str], tmp_path: Path) -> None:
    baseline = tmp_path / ".secrets.baseline"
    sha1 = hashlib.sha1(AWS.encode(), usedforsecurity=False).hexdigest()
    baseline.write_text(json.dumps({"version": "1.5.0", "results": {"src/app.py": [
        {"type": "AWS Access Key", "filename": "src/app.py", "hashed_secret": sha1, "line_number": 1}]}}))
    result = invoke(["scan", *rules_args, "--baseline", str(baseline), "-f", "jsonl", str(tree / "src")])
    assert result.exit_code == 0


def test_rules_check_passes_and_fails(sample_pack: Path, tmp_path: Path) -> None:
    ok = invoke(["rules", "check", str(sample_pack)])
    assert ok.exit_code == 0 and "5 rules in 1 packs" in ok.stdout
    broken = tmp_path / "broken.toml"
    broken.write_text(sample_pack.read_text().replace('secret = "AKIA2OGYBAH6STMMNXNN"',
                                                      'secret = "AKIA2OGYBAH6STMMNXN"'))
    failed = invoke(["rules", "check", str(broken)])
    assert failed.exit_code == 1
    assert "FAIL engine-sample: sample-aws-access-key-id example[0]" in failed.stderr
    invalid = tmp_path / "invalid.toml"
    invalid.write_text(sample_pack.read_text().replace('severity = "high"', 'severity = "huge"', 1))
    bad = invoke(["rules", "check", str(invalid)])
    assert bad.exit_code == 1 and "field 'severity'" in bad.stderr


def test_rules_list_json(rules_args: list[str]) -> None:
    result = invoke(["rules", "list", *rules_args, "--json"])
    document = json.loads(result.stdout)
    assert len(document["rules"]) == 5 and len(document["digest"]) == 16


def test_help_teaches_with_examples() -> None:
    result = invoke(["scan", "--help"])
    for words in ("Examples:", "--gitleaks-config", "Exit codes", "--baseline", "--jobs"):
        assert words in result.stdout


def test_subprocess_pipe_and_exit_code(rules_args: list[str], tmp_path: Path) -> None:
    env = {**os.environ, "JITSEC_HOME": str(tmp_path / "home")}
    command = [sys.executable, "-c", "from jitsec.cli import main; main()",
               "scan", *rules_args, "-f", "jsonl", "-"]
    done = subprocess.run(command, input=f"x={AWS}\n".encode(), capture_output=True, env=env, timeout=60,
                          check=False)
    assert done.returncode == 1
    assert json.loads(done.stdout)["rule"] == "sample-aws-access-key-id"
    assert AWS.encode() not in done.stdout + done.stderr
    assert (tmp_path / "home" / "fingerprint.key").is_file()


@pytest.mark.parametrize("fmt", ["text", "json", "jsonl", "sarif"])
def test_no_plaintext_secret_leaves_the_scanner(tree: Path, rules_args: list[str], tmp_path: Path,
                                                fmt: str) -> None:
    token = (tree / "notes.md").read_text().split()[1]
    out, baseline = tmp_path / "out", tmp_path / "baseline.json"
    scanned = invoke(["scan", *rules_args, "--stats", "-f", fmt, "-o", str(out), str(tree)])
    created = invoke(["baseline", "create", *rules_args, "-o", str(baseline), str(tree)])
    written = out.read_text() + baseline.read_text() + scanned.output + created.output
    assert "sample-broker-token" in written
    for secret in (AWS, token, token[4:20]):
        assert secret not in written
