from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jitsec.connectors.sinks import build_sink, parse_alert_spec
from jitsec.connectors.sinks.console import ConsoleSink
from jitsec.connectors.sinks.jsonl import JsonlSink
from jitsec.connectors.sinks.serialize import incident_summary
from jitsec.connectors.sinks.spool import Backoff
from rich.console import Console

from jitsec.kernel.records import Incident, ResponseAction
from jitsec.kernel.schemas import INCIDENT


def test_jsonl_appends_one_line_per_incident_version(
    tmp_path: Path, make_incident: Callable[..., Incident], leaked_token: str, fast_backoff: Backoff,
) -> None:
    out = tmp_path / "alerts" / "incidents.jsonl"
    sink = JsonlSink(out, tmp_path / "spool", backoff=fast_backoff)
    sink.send(make_incident(1))
    sink.send(make_incident(1, version=2, occurrences=7))
    assert sink.flush(10)
    sink.close()
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(line["version"], line["occurrences"]) for line in lines] == [(1, 1), (2, 7)]
    assert leaked_token not in out.read_text()
    for spool_file in (tmp_path / "spool").iterdir():
        assert leaked_token.encode() not in spool_file.read_bytes()


def test_console_shows_action_lease_and_latency(
    make_incident: Callable[..., Incident], leaked_token: str
) -> None:
    buffer = io.StringIO()
    sink = ConsoleSink(Console(file=buffer, width=120, color_system=None))
    sink.send(make_incident(1))
    sink.close()
    text = buffer.getvalue()
    assert "revoked" in text and "lease-1" in text and "12.5 ms" in text and "once" in text
    assert leaked_token not in text


def test_console_shows_hostile_locations_literally(make_incident: Callable[..., Incident]) -> None:
    """A path with rich markup or terminal escapes is data: shown, never interpreted, never dropped."""
    from dataclasses import replace  # noqa: PLC0415

    hostile = ("logs/[bold red]x[/]/[unclosed.log", "logs/\x1b[2J\x1b[31mred\x07.log", "a\nforged line")
    incident = replace(make_incident(1), locations=hostile, agent="[link=http://x]agent[/link]")
    buffer = io.StringIO()
    ConsoleSink(Console(file=buffer, width=200, force_terminal=True)).send(incident)
    text = buffer.getvalue()
    assert "[bold red]x[/]/[unclosed.log" in text and "[link=http://x]agent[/link]" in text
    assert "\x1b[2J" not in text and "\x07" not in text and "?[2J?[31mred?.log" in text
    assert "a?forged line" in text


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])  # a pure factory
@given(
    occurrences=st.integers(1, 10**9),
    locations=st.lists(st.text(max_size=30), max_size=5),
    action=st.sampled_from(list(ResponseAction)),
    latency=st.none() | st.floats(0, 1e6),
)
def test_the_json_shape_round_trips(
    make_incident: Callable[..., Incident], occurrences: int, locations: list[str],
    action: ResponseAction, latency: float | None,
) -> None:
    incident = make_incident(3, occurrences=occurrences, locations=tuple(locations), action=action,
                             latency_ms=latency)
    assert INCIDENT.from_json(INCIDENT.to_json(incident)) == incident
    assert incident.preview in incident_summary(incident)


def test_a_record_that_is_not_an_incident_is_refused() -> None:
    with pytest.raises(ValueError, match="schema"):
        INCIDENT.from_json('{"schema": "other"}')
    with pytest.raises(ValueError, match="incident_id"):
        INCIDENT.from_json('{"schema": "jitsec.incident/1"}')


@pytest.mark.parametrize(
    ("spec", "kind", "target"),
    [
        ("console", "console", ""),
        ("jsonl:/tmp/a.jsonl", "jsonl", "/tmp/a.jsonl"),
        ("webhook:https://hooks.example/x", "webhook", "https://hooks.example/x"),
        ("syslog+udp://127.0.0.1:514", "syslog+udp", "127.0.0.1:514"),
        ("syslog+tcp://logs.example:6514", "syslog+tcp", "logs.example:6514"),
    ],
)
def test_alert_specs_parse(spec: str, kind: str, target: str) -> None:
    parsed = parse_alert_spec(spec)
    assert (parsed.kind, parsed.target) == (kind, target)


@pytest.mark.parametrize("spec", ["", "slack", "webhook:ftp://x", "syslog+udp://host", "jsonl:"])
def test_bad_alert_specs_say_what_was_expected(spec: str) -> None:
    with pytest.raises(ValueError, match=r"alert spec|webhook"):
        parse_alert_spec(spec)


def test_build_sink_makes_a_working_jsonl_sink(
    tmp_path: Path, make_incident: Callable[..., Incident]
) -> None:
    sink = build_sink(f"jsonl:{tmp_path / 'out.jsonl'}", tmp_path / "spool")
    sink.send(make_incident(1))
    sink.close(timeout=10)
    assert (tmp_path / "out.jsonl").read_text().count("\n") == 1
