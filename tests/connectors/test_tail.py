from __future__ import annotations

import os
import time
from pathlib import Path

from jitsec.connectors.checkpoints import CheckpointStore
from jitsec.connectors.sources.tail import TailSource

from jitsec.kernel.records import FileOrigin


def append(path: Path, data: bytes) -> None:
    with path.open("ab") as handle:
        handle.write(data)


def test_follows_growth_and_places_every_chunk(tmp_path: Path, follow) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"one\ntwo\n")
    follower = follow(TailSource(log, poll_interval=0.01))
    follower.wait_for_data(b"two\n")
    append(log, b"three\nfour\n")
    follower.wait_for_data(b"four\n")
    follower.stop()
    assert follower.data == b"one\ntwo\nthree\nfour\n"
    last = follower.chunks[-1]
    assert last.origin == FileOrigin(str(log))
    assert last.offset == 8 and last.line == 3
    assert all(chunk.read_at is not None for chunk in follower.chunks)


def test_unfinished_line_is_held_until_its_newline(tmp_path: Path, follow) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"")
    follower = follow(TailSource(log, poll_interval=0.01, partial_timeout=5.0))
    append(log, b"password=hun")
    append(log, b"ter2\n")
    follower.wait_for_data(b"hunter2\n")
    follower.stop()
    assert [chunk.data for chunk in follower.chunks] == [b"password=hunter2\n"]


def test_overdue_partial_line_is_released(tmp_path: Path, follow) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"no newline yet")
    follower = follow(TailSource(log, poll_interval=0.01, partial_timeout=0.05))
    follower.wait_for_data(b"no newline yet")
    follower.stop()


def test_rotation_by_rename_reads_old_tail_then_new_file(tmp_path: Path, follow) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"before\n")
    source = TailSource(log, poll_interval=0.01)
    follower = follow(source)
    follower.wait_for_data(b"before\n")
    with log.open("ab") as old:  # the writer keeps its handle across the rename, as loggers do
        os.rename(log, tmp_path / "app.log.1")
        old.write(b"late write to old file\n")
        old.flush()
        log.write_bytes(b"fresh file\n")
        follower.wait_for_data(b"fresh file\n")
    follower.stop()
    assert follower.data == b"before\nlate write to old file\nfresh file\n"
    assert source.rotations == 1
    assert follower.chunks[-1].offset == 0 and follower.chunks[-1].line == 1


def test_truncation_restarts_from_the_beginning(tmp_path: Path, follow) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"a long first line\n")
    source = TailSource(log, poll_interval=0.01)
    follower = follow(source)
    follower.wait_for_data(b"first line\n")
    with log.open("wb") as handle:  # copytruncate-style rotation
        handle.write(b"short\n")
    follower.wait_for_data(b"short\n")
    follower.stop()
    assert source.truncations == 1
    assert follower.chunks[-1].offset == 0


def test_missing_file_is_waited_for_and_counted_once(tmp_path: Path, follow) -> None:
    log = tmp_path / "later.log"
    source = TailSource(log, poll_interval=0.01)
    follower = follow(source)
    follower.wait_for(lambda _: source.errors.counts.get("missing") == 1)
    log.write_bytes(b"appeared\n")
    follower.wait_for_data(b"appeared\n", timeout=5)
    follower.stop()
    assert source.errors.counts == {"missing": 1}


def test_unopenable_path_is_counted_and_does_not_stop_following(tmp_path: Path, follow) -> None:
    (tmp_path / "not-a-dir").write_bytes(b"")
    source = TailSource(tmp_path / "not-a-dir" / "x.log", poll_interval=0.01)
    follower = follow(source)
    follower.wait_for(lambda _: source.errors.counts.get("unreadable") == 1)
    follower.stop()


def test_binary_and_invalid_utf8_pass_through_untouched(tmp_path: Path, follow) -> None:
    log = tmp_path / "app.log"
    payload = b"\x01\x00\xffbin\x80ary\n"  # (a byte-order mark would make it UTF-16 text)
    log.write_bytes(payload)
    follower = follow(TailSource(log, poll_interval=0.01))
    follower.wait_for_data(payload)
    follower.stop()


def test_restart_resumes_after_acknowledged_data_only(tmp_path: Path, follow) -> None:
    log = tmp_path / "app.log"
    store = CheckpointStore(tmp_path / "checkpoints")
    log.write_bytes(b"one\ntwo\n")
    first = follow(TailSource(log, poll_interval=0.01, checkpoints=store))
    first.wait_for_data(b"two\n")
    first.stop()
    append(log, b"three\n")
    second = follow(TailSource(log, poll_interval=0.01, checkpoints=store))
    second.wait_for_data(b"three\n")
    second.stop()
    assert second.data == b"three\n"
    assert second.chunks[0].line == 3 and second.chunks[0].offset == 8


def test_unacknowledged_data_is_read_again_after_restart(tmp_path: Path, follow) -> None:
    log = tmp_path / "app.log"
    store = CheckpointStore(tmp_path / "checkpoints")
    log.write_bytes(b"one\n")
    first = follow(TailSource(log, poll_interval=0.01, checkpoints=store))
    first.wait_for_data(b"one\n")
    first.stop()
    append(log, b"two\n")
    crashed = follow(TailSource(log, poll_interval=0.01, checkpoints=store), acknowledge=False)
    crashed.wait_for_data(b"two\n")
    crashed.stop()
    again = follow(TailSource(log, poll_interval=0.01, checkpoints=store))
    again.wait_for_data(b"two\n")
    again.stop()
    assert again.data == b"two\n"


def test_file_replaced_while_down_is_read_from_its_start(tmp_path: Path, follow) -> None:
    log = tmp_path / "app.log"
    store = CheckpointStore(tmp_path / "checkpoints")
    log.write_bytes(b"original content line\n")
    first = follow(TailSource(log, poll_interval=0.01, checkpoints=store))
    first.wait_for_data(b"line\n")
    first.stop()
    os.rename(log, tmp_path / "app.log.1")
    log.write_bytes(b"replacement that is longer than before\n")
    second = follow(TailSource(log, poll_interval=0.01, checkpoints=store))
    second.wait_for_data(b"before\n")
    second.stop()
    assert second.data == b"replacement that is longer than before\n"


def test_from_end_skips_existing_content_but_counts_its_lines(tmp_path: Path, follow) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"old\nold\n")
    source = TailSource(log, poll_interval=0.01, from_end=True)
    follower = follow(source)
    assert source.opened.wait(5)
    append(log, b"new\n")
    follower.wait_for_data(b"new\n")
    follower.stop()
    assert follower.data == b"new\n" and follower.chunks[0].line == 3


def test_without_follow_reads_once_and_ends(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"x\ny")
    chunks = list(TailSource(log, follow=False).chunks())
    assert b"".join(chunk.data for chunk in chunks) == b"x\ny"


def test_no_line_lost_or_repeated_across_repeated_rotations_under_load(tmp_path: Path, follow) -> None:
    """Writes race each rotation (some land in the renamed file, the next in the new one at once);
    rotations themselves are further apart than the poll interval, as real ones are. (Rotating a
    file twice within one poll loses the middle file, as with ``tail -F``.)"""
    log = tmp_path / "busy.log"
    log.write_bytes(b"")
    source = TailSource(log, poll_interval=0.005)
    follower = follow(source)
    assert source.opened.wait(5)
    handle = log.open("ab", buffering=0)
    for number in range(3000):
        handle.write(b"line %05d\n" % number)
        if number % 400 == 399:  # logrotate: rename; the writer writes a few more lines, then reopens
            os.rename(log, tmp_path / f"busy.log.{number}")
            for late in range(5):
                handle.write(b"late %05d %d\n" % (number, late))
            handle.close()
            handle = log.open("ab", buffering=0)
            time.sleep(0.05)
    handle.close()
    follower.wait_for_data(b"line 02999\n")
    follower.stop()
    expected = []
    for number in range(3000):
        expected.append(b"line %05d" % number)
        if number % 400 == 399:
            expected.extend(b"late %05d %d" % (number, late) for late in range(5))
    assert follower.data.splitlines() == expected


def test_file_rotated_while_down_is_finished_before_the_new_one(tmp_path: Path, follow) -> None:
    log = tmp_path / "app.log"
    store = CheckpointStore(tmp_path / "checkpoints")
    log.write_bytes(b"seen before the restart\n")
    first = follow(TailSource(log, poll_interval=0.01, checkpoints=store))
    first.wait_for_data(b"restart\n")
    first.stop()
    append(log, b"written after the stop\n")
    os.rename(log, tmp_path / "app.log.1")
    log.write_bytes(b"new file\n")
    source = TailSource(log, poll_interval=0.01, checkpoints=store)
    second = follow(source)
    second.wait_for_data(b"new file\n")
    second.stop()
    assert second.data == b"written after the stop\nnew file\n"
    assert second.chunks[0].origin == FileOrigin(str(tmp_path / "app.log.1"))
    assert second.chunks[0].line == 2 and source.rotations == 1


def test_truncated_and_regrown_between_polls_is_read_from_the_start(tmp_path: Path, follow) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"first generation line\n")
    source = TailSource(log, poll_interval=0.2)
    follower = follow(source)
    follower.wait_for_data(b"generation line\n")
    with log.open("r+b") as handle:  # truncate and rewrite past the old offset within one poll
        handle.truncate(0)
        handle.write(b"SECOND generation, longer than the first one\n")
    follower.wait_for_data(b"SECOND generation, longer than the first one\n")
    follower.stop()
    assert source.truncations == 1
    assert follower.data == b"first generation line\nSECOND generation, longer than the first one\n"


def test_fifo_is_not_followed_and_does_not_hang(tmp_path: Path, follow) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    source = TailSource(fifo, poll_interval=0.01)
    follower = follow(source)
    follower.wait_for(lambda _: source.errors.counts.get("not-a-file") == 1)
    follower.stop()


def test_lag_counts_bytes_written_but_not_read(tmp_path: Path, follow) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"one\n")
    source = TailSource(log, poll_interval=60)  # reads once, then sleeps through the appends
    assert source.lag() is None
    follower = follow(source)
    follower.wait_for_data(b"one\n")
    append(log, b"two\nthree\n")
    assert source.lag() == 10
    follower.stop()
