from __future__ import annotations

import os
import time

from jitsec.connectors.sources.stdin_follow import StdinFollowSource

from jitsec.kernel.records import StreamOrigin


def test_each_line_arrives_as_soon_as_it_is_written(follow) -> None:
    read_end, write_end = os.pipe()
    with os.fdopen(read_end, "rb", buffering=0) as stream:
        follower = follow(StdinFollowSource(stream, poll_interval=0.01))
        os.write(write_end, b"first line\n")
        follower.wait_for_data(b"first line\n", timeout=2)
        written = time.monotonic()
        os.write(write_end, b"second line\n")
        follower.wait_for_data(b"second line\n", timeout=2)
        chunk = follower.chunks[-1]
        assert chunk.read_at is not None and chunk.read_at >= written
        assert chunk.origin == StreamOrigin("-")
        assert chunk.offset == 11 and chunk.line == 2
        os.close(write_end)
        follower.wait_for(lambda f: not f._thread.is_alive(), timeout=2)  # end of stream ends it
        follower.stop()


def test_close_stops_a_quiet_stream(follow) -> None:
    read_end, write_end = os.pipe()
    try:
        with os.fdopen(read_end, "rb", buffering=0) as stream:
            follower = follow(StdinFollowSource(stream, poll_interval=0.01))
            follower.stop()
    finally:
        os.close(write_end)


def test_last_line_without_newline_is_delivered_at_end_of_stream(follow) -> None:
    read_end, write_end = os.pipe()
    with os.fdopen(read_end, "rb", buffering=0) as stream:
        follower = follow(StdinFollowSource(stream, poll_interval=0.01, partial_timeout=60))
        os.write(write_end, b"a\n\xff\xfe tail")
        os.close(write_end)
        follower.wait_for_data(b"\xff\xfe tail", timeout=2)
        follower.stop()
        assert follower.data == b"a\n\xff\xfe tail"
