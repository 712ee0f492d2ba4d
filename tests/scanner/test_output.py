from __future__ import annotations

import io
import json
import re
from dataclasses import replace

import pytest
from jitsec.scanner.engine import Scanner
from jitsec.scanner.git_fields import git_fields, short_commit
from jitsec.scanner.output import FindingWriter, finding_row, sarif_document
from jitsec.scanner.ruleset import make_ruleset

from jitsec.kernel.credential_format import CredentialKind, live_lookup, mint, sha256_fingerprint
from jitsec.kernel.records import FileOrigin, GitOrigin

AWS = "AKIA2OGYBAH6STMMNXNN"


def findings(scanner: Scanner, token: str):
    text = f"aws={AWS}\nauth {token}\n".encode()
    return scanner.scan_bytes(text, FileOrigin("app/config.env"))


def test_jsonl_rows_carry_the_agreed_fields(hs_scanner: Scanner) -> None:
    token = mint(CredentialKind.ENGINE_TOKEN)
    out = io.StringIO()
    writer = FindingWriter("jsonl", out, hs_scanner.ruleset)
    writer.write(findings(hs_scanner, token))
    writer.close({})
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [row["rule"] for row in rows] == ["sample-aws-access-key-id", "sample-broker-token"]
    agreed = ("rule", "path", "line", "column", "preview", "fingerprint", "severity", "confidence", "broker")
    for key in agreed:
        assert key in rows[0]
    assert rows[0]["path"] == "app/config.env" and rows[0]["line"] == 1 and rows[0]["broker"] is None
    assert rows[1]["broker"] == "unknown"
    assert rows[1]["credential_lookup"] == live_lookup(sha256_fingerprint(token))
    assert "credential_sha256" not in rows[1]  # the proof a leak report carries never goes in a report
    assert AWS not in out.getvalue() and token not in out.getvalue()
    assert sha256_fingerprint(token) not in out.getvalue()


def test_json_document_has_summary_and_digest(hs_scanner: Scanner) -> None:
    out = io.StringIO()
    writer = FindingWriter("json", out, hs_scanner.ruleset)
    writer.write(findings(hs_scanner, mint(CredentialKind.TASK_TOKEN)))
    writer.close({"files": 1})
    document = json.loads(out.getvalue())
    assert document["rules_digest"] == hs_scanner.ruleset.digest
    assert document["summary"] == {"files": 1}
    assert len(document["findings"]) == 2


def test_sarif_structure(hs_scanner: Scanner) -> None:
    found = findings(hs_scanner, mint(CredentialKind.ENGINE_TOKEN))
    document = sarif_document(found, hs_scanner.ruleset)
    assert document["version"] == "2.1.0"
    (run,) = document["runs"]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == ["sample-aws-access-key-id", "sample-broker-token"]
    assert rules[1]["defaultConfiguration"]["level"] == "error"
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        location = result["locations"][0]["physicalLocation"]
        assert location["artifactLocation"] == {"uri": "app/config.env", "uriBaseId": "%SRCROOT%"}
        assert location["region"]["startLine"] >= 1 and location["region"]["startColumn"] >= 1
        assert re.fullmatch(r"[0-9a-f]{32}:1", result["partialFingerprints"]["jitsecContext/v1"])
    assert AWS not in json.dumps(document)
    assert "lease" in rules[1]["help"]["text"]  # a broker credential: the broker revokes it
    assert [r["properties"]["security-severity"] for r in rules] == ["8.0", "9.5"]


def test_sarif_rules_link_to_where_their_credentials_are_revoked(hs_scanner: Scanner) -> None:
    aws = hs_scanner.ruleset.by_id("sample-aws-access-key-id")
    linked = replace(aws, revoke="https://console.example.org/iam/keys")
    found = hs_scanner.scan_bytes(f"aws={AWS}\n".encode(), FileOrigin("a.env"))
    (with_link,) = sarif_document(found, make_ruleset([linked]))["runs"][0]["tool"]["driver"]["rules"]
    (without,) = sarif_document(found, hs_scanner.ruleset)["runs"][0]["tool"]["driver"]["rules"]
    assert with_link["helpUri"] == "https://console.example.org/iam/keys"
    assert "https://console.example.org/iam/keys" in with_link["help"]["text"]
    assert "helpUri" not in without and "AWS access key ID" in without["help"]["text"]


def test_text_output_is_one_line_per_finding(hs_scanner: Scanner) -> None:
    out = io.StringIO()
    writer = FindingWriter("text", out, hs_scanner.ruleset)
    found = findings(hs_scanner, mint(CredentialKind.ENGINE_TOKEN))
    writer.write(found)
    writer.close({})
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("app/config.env:1:5") and "sample-aws-access-key-id" in lines[0]
    assert finding_row(found[0])["preview"] in lines[0]


def test_text_output_prints_locations_literally_never_as_emoji_or_markup(hs_scanner: Scanner) -> None:
    text = b"\n" * 99 + f"aws={AWS}\n".encode()
    found = hs_scanner.scan_bytes(text, FileOrigin("logs/[bold]x[/]:100:.log"))
    stream = io.StringIO()
    writer = FindingWriter("text", stream, hs_scanner.ruleset)
    writer.write(found)
    writer.close({})
    assert "logs/[bold]x[/]:100:.log:100:5" in stream.getvalue()


@pytest.mark.parametrize(("name", "email", "date", "expected"), [
    ("Ann", "ann@example.org", "2026-01-02T03:04:05+01:00",
     "0123456789ab by Ann <ann@example.org> on 2026-01-02"),
    ("", "ann@example.org", "", "0123456789ab by <ann@example.org>"),
    ("Ann", "", "", "0123456789ab by Ann"),
    ("", "", "", "0123456789ab"),
])
def test_the_short_form_of_a_commit_shows_what_is_known(name: str, email: str, date: str,
                                                       expected: str) -> None:
    fields = git_fields(GitOrigin("0123456789ab" + "c" * 28, "a.env", name, email, date, "subject"))
    assert fields is not None and short_commit(fields) == expected
