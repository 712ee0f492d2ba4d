"""An AWS key id and its secret key, scanned together, are one incident and one alert naming both."""

from __future__ import annotations

import json
from pathlib import Path

from jitsec.connectors.sinks.alert import AlertContext, alert_document
from jitsec.connectors.sinks.serialize import incident_summary
from jitsec.connectors.sinks.webhook import slack_blocks
from jitsec.scanner.engine import Scanner
from jitsec.scanner.fingerprint import Fingerprinter
from jitsec.scanner.ruleset import load_ruleset
from jsonschema import Draft7Validator, FormatChecker

from jitsec.kernel.records import Chunk, FileOrigin
from jitsec.response.incidents import IncidentPolicy
from jitsec.response.responder import Responder, ResponderSettings
from jitsec.testing import CollectingSink

KEY_ID = "AKIA2OGYBAH6STMMNXNN"  # pragma: allowlist secret
SECRET = "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"  # pragma: allowlist secret
LONE_ID = "AKIABS5KLVVAXE32FR3U"  # pragma: allowlist secret
SCHEMA = Path(__file__).resolve().parents[2] / "docs" / "schemas" / "alert.schema.json"


def test_a_pair_is_one_incident_whose_alert_names_both_halves(tmp_path: Path) -> None:
    path = tmp_path / "deploy.env"
    text = (f"AWS_ACCESS_KEY_ID={KEY_ID}\nAWS_SECRET_ACCESS_KEY={SECRET}\n" + "# filler\n" * 10
            + f"OLD_KEY_ID={LONE_ID}\n")
    path.write_text(text)
    chunk = Chunk(text.encode(), FileOrigin(str(path)))
    findings = Scanner(load_ruleset(), Fingerprinter(b"pair-key-" * 4), engine="python").scan_bytes(
        chunk.data, chunk.origin)
    sink = CollectingSink()
    responder = Responder([sink], broker=None, state_dir=tmp_path / "state",
                          settings=ResponderSettings(incidents=IncidentPolicy(resend_interval=3600)))
    responder.respond(chunk, findings)
    responder.respond(chunk, findings)  # the same lines again: no new incident, no new version
    responder.close()
    assert sorted(i.rule_id for i in sink.incidents) == ["aws-access-key-id", "aws-secret-access-key"]
    [pair] = [i for i in sink.incidents if i.rule_id == "aws-secret-access-key"]
    assert pair.locations == (f"{path}:2",)
    [partner] = pair.related
    assert partner.startswith("aws-access-key-id AKIA") and partner.endswith(f" at {path}:1")
    [lone] = [i for i in sink.incidents if i.rule_id == "aws-access-key-id"]
    assert lone.locations == (f"{path}:13",) and lone.related == ()  # too far from the secret to pair

    document = alert_document(pair, AlertContext(scanner="test", host="h"))
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    assert list(Draft7Validator(schema, format_checker=FormatChecker()).iter_errors(document)) == []
    assert document["related"] == [partner]
    slack = json.dumps(slack_blocks(pair, AlertContext(scanner="test", host="h")))
    assert "Paired with" in slack and "aws-access-key-id" in slack
    assert "paired with aws-access-key-id" in incident_summary(pair)
    for rendered in (json.dumps(document), slack, incident_summary(pair)):
        assert KEY_ID not in rendered and SECRET not in rendered and LONE_ID not in rendered
