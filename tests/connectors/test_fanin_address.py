from __future__ import annotations

import json
from pathlib import Path

import pytest

from connectors.address import SourceAddressError, is_source_address, open_source
from connectors.checkpoints import CheckpointError, CheckpointStore, FilePosition
from connectors.fanin import FanInSource
from connectors.sources.git import GitHistorySource
from connectors.sources.stdin_follow import StdinFollowSource
from connectors.sources.tail import TailSource
from connectors.sources.watch import DirectoryWatchSource


@pytest.mark.parametrize(
    ("argument", "expected"),
    [
        ("git:.", True),
        ("kafka://localhost:9092/logs?group=g", True),
        ("elasticsearch://localhost:9200/logs-*", True),
        ("-", False),
        ("app.log", False),
        ("./git:odd-name", False),
    ],
)
def test_is_source_address(argument: str, expected: bool) -> None:
    assert is_source_address(argument) is expected


def test_open_source_dispatches_by_address(tmp_path: Path, git_repo) -> None:
    (tmp_path / "f.log").write_bytes(b"")
    assert isinstance(open_source(str(tmp_path / "f.log"), follow=True), TailSource)
    assert isinstance(open_source(str(tmp_path), follow=True), DirectoryWatchSource)
    assert isinstance(open_source("-", follow=True), StdinFollowSource)
    assert isinstance(open_source(f"git:{tmp_path / 'repo'}", follow=False), GitHistorySource)


@pytest.mark.parametrize("address", ["", "git:", "git:/nonexistent/repo"])
def test_bad_addresses_are_clear_errors(address: str) -> None:
    with pytest.raises(SourceAddressError):
        open_source(address, follow=False)


def test_missing_file_is_an_error_only_when_not_following(tmp_path: Path) -> None:
    with pytest.raises(SourceAddressError, match="no such file"):
        open_source(str(tmp_path / "absent.log"), follow=False)
    assert isinstance(open_source(str(tmp_path / "absent.log"), follow=True), TailSource)


def test_fan_in_merges_sources_and_routes_acknowledgements(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path / "checkpoints")
    for name in ("a", "b"):
        (tmp_path / f"{name}.log").write_bytes(f"{name} line\n".encode())
    sources = [TailSource(tmp_path / f"{name}.log", poll_interval=0.01, checkpoints=store) for name in "ab"]
    fan_in = FanInSource(sources, idle_timeout=0.3)
    seen = []
    for chunk in fan_in.chunks():
        seen.append(chunk.data)
        fan_in.acknowledge(chunk)
    assert sorted(seen) == [b"a line\n", b"b line\n"]
    assert fan_in.idle_expired
    for name in "ab":
        position = store.load_position(f"tail:{tmp_path / f'{name}.log'}")
        assert position is not None and position.offset == 7


def test_fan_in_reports_a_failing_source_and_keeps_the_others(tmp_path: Path) -> None:
    (tmp_path / "ok.log").write_bytes(b"fine\n")
    fan_in = FanInSource(
        [GitHistorySource(tmp_path / "not-a-repo"), TailSource(tmp_path / "ok.log", follow=False)]
    )
    assert [chunk.data for chunk in fan_in.chunks()] == [b"fine\n"]
    assert fan_in.errors.counts == {"source-failed": 1}


def test_checkpoint_store_round_trip_and_corruption(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    position = FilePosition("/x.log", 1, 2, 30, 4, 16, "ab" * 32)
    store.save_position("tail:/x.log", position, durable=True)
    assert store.load_position("tail:/x.log") == position
    assert store.load("tail:/other") is None
    (next(tmp_path.glob("*.json"))).write_text("{not json")
    with pytest.raises(CheckpointError, match="corrupt"):
        store.load("tail:/x.log")
    (next(tmp_path.glob("*.json"))).write_text(json.dumps({"key": "tail:/x.log", "value": {"path": 1}}))
    with pytest.raises(CheckpointError, match="malformed"):
        store.load_position("tail:/x.log")
