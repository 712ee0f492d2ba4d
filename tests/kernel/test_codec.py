"""The record codec: every record round-trips, the schema id is checked, bad fields are named."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jitsec.kernel.codec import Codec, CodecError
from jitsec.kernel.records import (
    BrokerStatus,
    Confidence,
    ElasticsearchOrigin,
    FileOrigin,
    Finding,
    GitOrigin,
    Incident,
    KafkaOrigin,
    ResponseAction,
    Severity,
    StreamOrigin,
)
from jitsec.kernel.schemas import FINDING, INCIDENT

texts = st.text(max_size=30)
floats = st.floats(allow_nan=False, allow_infinity=False)
origins = st.one_of(
    st.builds(FileOrigin, texts),
    st.builds(StreamOrigin, texts),
    st.builds(GitOrigin, texts, texts, texts, texts, texts, texts, texts),
    st.builds(KafkaOrigin, texts, st.integers(0, 99), st.integers(0, 2**40), st.none() | texts),
    st.builds(ElasticsearchOrigin, texts, texts, texts),
)
findings = st.builds(
    Finding, rule_id=texts, origin=origins, line=st.integers(1, 10**6), column=st.integers(1, 999),
    offset=st.integers(0, 2**40), preview=texts, fingerprint=texts, severity=st.sampled_from(Severity),
    confidence=st.sampled_from(Confidence), description=texts, credential_sha256=st.none() | texts,
    broker=st.none() | st.sampled_from(BrokerStatus), read_at=st.none() | floats,
    end_line=st.integers(0, 10**6), end_column=st.integers(0, 999), entropy=floats,
)
incidents = st.builds(
    Incident, incident_id=texts, version=st.integers(1, 99), fingerprint=texts, rule_id=texts,
    description=texts, severity=st.sampled_from(Severity), confidence=st.sampled_from(Confidence),
    preview=texts, occurrences=st.integers(1, 10**6), first_seen=floats, last_seen=floats,
    locations=st.lists(texts, max_size=4).map(tuple), action=st.sampled_from(ResponseAction),
    broker=st.none() | st.sampled_from(BrokerStatus), lease_id=st.none() | texts, agent=st.none() | texts,
    task=st.none() | texts, scopes=st.lists(texts, max_size=3).map(tuple), revoked_at=st.none() | floats,
    latency_ms=st.none() | floats, rules_digest=texts,
)


@given(findings)
def test_every_finding_round_trips_through_json(finding: Finding) -> None:
    decoded = FINDING.from_json(FINDING.to_json(finding))
    assert decoded == finding
    # a git origin's authorship is outside equality: compare every field as written
    assert FINDING.to_dict(decoded) == FINDING.to_dict(finding)


def test_a_git_finding_written_before_authorship_existed_still_reads() -> None:
    older = ('{"schema":"jitsec.finding/1","rule_id":"r",'
             '"origin":{"kind":"git","commit":"ab12","path":"a.env"},"line":1,"column":1,"offset":0,"preview":"p","fingerprint":"f","severity":"high",'
             '"confidence":"heuristic"}')
    origin = FINDING.from_json(older).origin
    assert origin == GitOrigin("ab12", "a.env")
    assert isinstance(origin, GitOrigin)
    assert (origin.author_name, origin.author_email, origin.author_date) == ("", "", "")
    assert (origin.subject, origin.repository) == ("", "")


@given(incidents)
def test_every_incident_round_trips_and_leads_with_its_schema(incident: Incident) -> None:
    text = INCIDENT.to_json(incident)
    assert next(iter(json.loads(text))) == "schema"
    assert INCIDENT.from_json(text) == incident


def test_an_origin_carries_its_kind_and_an_unknown_kind_is_refused() -> None:
    finding = Finding("r", KafkaOrigin("t", 1, 7), 1, 1, 0, "p", "f", Severity.LOW, Confidence.HEURISTIC)
    data = FINDING.to_dict(finding)
    assert data["origin"] == {"kind": "kafka", "topic": "t", "partition": 1, "offset": 7, "field": None}
    data["origin"]["kind"] = "ftp"
    with pytest.raises(CodecError, match=r"jitsec.finding/1.origin: kind 'ftp'"):
        FINDING.from_dict(data)


def test_a_record_of_another_schema_or_with_a_wrong_field_is_refused_by_name() -> None:
    incident = Incident("i", 1, "f", "r", "d", Severity.HIGH, Confidence.CONFIRMED, "p", 1, 0.0, 0.0, (),
                        ResponseAction.ALERT_ONLY)
    data = INCIDENT.to_dict(incident)
    with pytest.raises(CodecError, match=r"not a jitsec\.finding/1 record \(schema=.jitsec\.incident/1.\)"):
        FINDING.from_dict(data)
    with pytest.raises(CodecError, match=r"\.occurrences: expected int, got str"):
        INCIDENT.from_dict({**data, "occurrences": "3"})
    with pytest.raises(CodecError, match=r"\.severity: 'urgent' is not a Severity"):
        INCIDENT.from_dict({**data, "severity": "urgent"})
    with pytest.raises(CodecError, match="field 'incident_id' is missing"):
        INCIDENT.from_dict({key: value for key, value in data.items() if key != "incident_id"})
    with pytest.raises(CodecError, match="not JSON"):
        INCIDENT.from_json(b"\xff")


def test_an_older_record_without_new_fields_reads_with_their_defaults() -> None:
    incident = Incident("i", 1, "f", "r", "d", Severity.HIGH, Confidence.CONFIRMED, "p", 1, 0.0, 0.0, ("a",),
                        ResponseAction.REVOKED, scopes=("s",), rules_digest="x")
    data = INCIDENT.to_dict(incident)
    for newer in ("scopes", "rules_digest", "latency_ms"):
        del data[newer]
    data["added_by_a_newer_writer"] = 1
    assert INCIDENT.from_dict(data) == Incident("i", 1, "f", "r", "d", Severity.HIGH, Confidence.CONFIRMED,
                                                "p", 1, 0.0, 0.0, ("a",), ResponseAction.REVOKED)


def test_only_dataclasses_get_a_codec() -> None:
    with pytest.raises(TypeError, match="not a dataclass"):
        Codec(dict, "x/1")
