from __future__ import annotations

import json
from pathlib import Path

import pytest
from jitsec.connectors.address import SourceAddressError, is_source_address, open_source
from jitsec.connectors.checkpoints import CheckpointError, CheckpointStore, FilePosition
from jitsec.connectors.sources.files import FilesSource
from jitsec.connectors.sources.git import GitHistorySource
from jitsec.connectors.sources.stdin import StdinSource
from jitsec.connectors.sources.stdin_follow import StdinFollowSource
from jitsec.connectors.sources.tail import TailSource
from jitsec.connectors.sources.watch import DirectoryWatchSource


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
    assert isinstance(open_source(str(tmp_path), follow=False), FilesSource)
    assert isinstance(open_source("-", follow=False), StdinSource)


@pytest.mark.parametrize("address", ["", "git:", "git:/nonexistent/repo"])
def test_bad_addresses_are_clear_errors(address: str) -> None:
    with pytest.raises(SourceAddressError):
        open_source(address, follow=False)


def test_missing_file_is_an_error_only_when_not_following(tmp_path: Path) -> None:
    with pytest.raises(SourceAddressError, match="no such file"):
        open_source(str(tmp_path / "absent.log"), follow=False)
    assert isinstance(open_source(str(tmp_path / "absent.log"), follow=True), TailSource)


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
