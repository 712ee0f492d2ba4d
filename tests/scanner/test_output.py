from __future__ import annotations

import io
import json
import re

from jitsec.scanner.engine import Scanner
from jitsec.scanner.output import FindingWriter, finding_row, sarif_document

from jitsec.kernel.credential_format import CredentialKind, mint
from jitsec.kernel.records import FileOrigin

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
    assert rows[1]["broker"] == "unknown" and rows[1]["credential_sha256"]
    assert AWS not in out.getvalue() and token not in out.getvalue()


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
        assert location["artifactLocation"]["uri"] == "app/config.env"
        assert location["region"]["startLine"] >= 1 and location["region"]["startColumn"] >= 1
        assert re.fullmatch(r"[0-9a-f]{32}:1", result["partialFingerprints"]["jitsecContext/v1"])
    assert AWS not in json.dumps(document)


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
