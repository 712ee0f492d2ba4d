from __future__ import annotations

import os
from pathlib import Path

from jitsec.connectors.checkpoints import CheckpointStore
from jitsec.connectors.sources.watch import DirectoryWatchSource

from jitsec.kernel.records import FileOrigin


def by_path(follower) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for chunk in follower.chunks:
        assert isinstance(chunk.origin, FileOrigin)
        out[chunk.origin.path] = out.get(chunk.origin.path, b"") + chunk.data
    return out


def test_existing_new_and_growing_files(tmp_path: Path, follow) -> None:
    root = tmp_path / "logs"
    (root / "nested").mkdir(parents=True)
    (root / "old.log").write_bytes(b"old\n")
    follower = follow(DirectoryWatchSource(root))
    follower.wait_for_data(b"old\n")
    (root / "nested" / "new.log").write_bytes(b"new file line\n")
    follower.wait_for_data(b"new file line\n")
    with (root / "old.log").open("ab") as handle:
        handle.write(b"grown\n")
    follower.wait_for_data(b"grown\n")
    follower.stop()
    assert by_path(follower) == {
        str(root / "old.log"): b"old\ngrown\n",
        str(root / "nested" / "new.log"): b"new file line\n",
    }
    grown = next(chunk for chunk in follower.chunks if chunk.data == b"grown\n")
    assert grown.offset == 4 and grown.line == 2


def test_burst_of_writes_is_read_whole_and_in_order(tmp_path: Path, follow) -> None:
    root = tmp_path / "logs"
    root.mkdir()
    follower = follow(DirectoryWatchSource(root, debounce=0.05))
    expected = b"".join(b"line %d\n" % n for n in range(200))
    with (root / "burst.log").open("wb") as handle:
        for n in range(200):
            handle.write(b"line %d\n" % n)
            handle.flush()
    follower.wait_for_data(expected)
    follower.stop()
    assert follower.data == expected


def test_directory_moved_in_is_scanned(tmp_path: Path, follow) -> None:
    root = tmp_path / "logs"
    root.mkdir()
    outside = tmp_path / "staging"
    outside.mkdir()
    (outside / "moved.log").write_bytes(b"moved in\n")
    follower = follow(DirectoryWatchSource(root))
    os.rename(outside, root / "staging")
    follower.wait_for_data(b"moved in\n")
    follower.stop()


def test_rename_inside_tree_keeps_position(tmp_path: Path, follow) -> None:
    root = tmp_path / "logs"
    root.mkdir()
    (root / "app.log").write_bytes(b"first\n")
    follower = follow(DirectoryWatchSource(root))
    follower.wait_for_data(b"first\n")
    os.rename(root / "app.log", root / "app.log.1")
    (root / "app.log").write_bytes(b"second\n")
    follower.wait_for_data(b"second\n")
    with (root / "app.log.1").open("ab") as handle:
        handle.write(b"late\n")
    follower.wait_for_data(b"late\n")
    follower.stop()
    assert follower.data.count(b"first\n") == 1


def test_binary_files_are_skipped_and_counted(tmp_path: Path, follow) -> None:
    root = tmp_path / "logs"
    root.mkdir()
    source = DirectoryWatchSource(root)
    follower = follow(source)
    (root / "blob.bin").write_bytes(b"\x00\x01\x02 binary")
    (root / "text.log").write_bytes(b"text\n")
    follower.wait_for_data(b"text\n")
    follower.wait_for(lambda _: source.errors.counts.get("binary-skipped") == 1)
    follower.stop()
    assert b"binary" not in follower.data


def test_restart_resumes_each_file(tmp_path: Path, follow) -> None:
    root = tmp_path / "logs"
    root.mkdir()
    store = CheckpointStore(tmp_path / "checkpoints")
    (root / "a.log").write_bytes(b"a1\n")
    (root / "b.log").write_bytes(b"b1\n")
    first = follow(DirectoryWatchSource(root, checkpoints=store))
    first.wait_for(lambda f: b"a1\n" in f.data and b"b1\n" in f.data)
    first.stop()
    with (root / "a.log").open("ab") as handle:
        handle.write(b"a2\n")
    (root / "c.log").write_bytes(b"c1\n")
    second = follow(DirectoryWatchSource(root, checkpoints=store))
    second.wait_for(lambda f: b"a2\n" in f.data and b"c1\n" in f.data)
    second.stop()
    assert by_path(second) == {str(root / "a.log"): b"a2\n", str(root / "c.log"): b"c1\n"}


def test_file_rewritten_in_place_is_read_from_its_start(tmp_path: Path, follow) -> None:
    root = tmp_path / "logs"
    root.mkdir()
    (root / "app.log").write_bytes(b"short\n")
    follower = follow(DirectoryWatchSource(root))
    follower.wait_for_data(b"short\n")
    (root / "app.log").write_bytes(b"rewritten with longer content\n")  # truncate + write, same inode
    follower.wait_for_data(b"rewritten with longer content\n")
    follower.stop()
    assert follower.data == b"short\nrewritten with longer content\n"


def test_lag_is_zero_once_everything_is_read(tmp_path: Path, follow) -> None:
    root = tmp_path / "logs"
    root.mkdir()
    (root / "a.log").write_bytes(b"a\n")
    source = DirectoryWatchSource(root)
    follower = follow(source)
    follower.wait_for_data(b"a\n")
    assert source.lag() == 0
    follower.stop()


def test_excluded_folders_and_files_are_never_read(tmp_path: Path, follow) -> None:
    root = tmp_path / "logs"
    (root / "archive").mkdir(parents=True)
    (root / "archive" / "old.log").write_bytes(b"archived\n")
    (root / "app.log.gz").write_bytes(b"compressed\n")

    def skip(relative: str, is_dir: bool):
        return "excluded" if relative == "archive" or relative.endswith(".gz") else None

    follower = follow(DirectoryWatchSource(root, skip=skip))
    (root / "archive" / "new.log").write_bytes(b"archived later\n")
    (root / "rotated.gz").write_bytes(b"compressed later\n")
    (root / "app.log").write_bytes(b"kept\n")
    follower.wait_for_data(b"kept\n")
    follower.stop()
    assert by_path(follower) == {str(root / "app.log"): b"kept\n"}
