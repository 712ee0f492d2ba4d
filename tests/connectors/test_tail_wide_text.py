"""Followed UTF-16/32 files (a Windows service log) are decoded before scanning: pieces cut inside a
character, a resumed checkpoint that falls between a newline's two bytes, and the real `jitsec watch`
reporting a secret from such a file."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from jitsec.connectors.checkpoints import CheckpointStore
from jitsec.connectors.sources.tail import TailSource

from jitsec.kernel.credential_format import mint
from jitsec.testing import wait_until


def append(path: Path, data: bytes) -> None:
    with path.open("ab") as handle:
        handle.write(data)


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-be", "utf-32"])
def test_wide_text_is_followed_as_utf8_whatever_the_cuts(tmp_path: Path, follow, codec: str) -> None:
    log = tmp_path / "service.log"
    text = "".join(f"2026-12-07 request {n} served by node-é{n % 3}\n" for n in range(40))
    encoded = text.encode(codec)  # "utf-16"/"utf-32" write a byte-order mark; utf-16-be none
    log.write_bytes(encoded[:5])
    follower = follow(TailSource(log, poll_interval=0.01, partial_timeout=0.02))
    for start in range(5, len(encoded), 7):  # odd cuts: inside characters
        append(log, encoded[start:start + 7])
    follower.wait_for_data(text.encode())
    follower.stop()
    assert follower.data == text.encode()
    offsets = [(chunk.offset, len(chunk.data)) for chunk in follower.chunks]
    assert all(a + n == b for (a, n), (b, _) in itertools.pairwise(offsets))  # no gap


def test_a_resumed_wide_file_starts_at_the_next_character(tmp_path: Path, follow) -> None:
    log = tmp_path / "service.log"
    store = CheckpointStore(tmp_path / "checkpoints")
    log.write_bytes("first line of the service\nsecond line of the service\n".encode("utf-16-le"))  # no BOM
    first = follow(TailSource(log, poll_interval=0.01, checkpoints=store))
    first.wait_for_data(b"second line of the service\n")
    first.stop()
    append(log, "third line\n".encode("utf-16-le"))
    second = follow(TailSource(log, poll_interval=0.01, checkpoints=store))
    second.wait_for_data(b"third line\n")
    second.stop()
    assert second.data.lstrip(b"\n") == b"third line\n"
    assert "\ufffd".encode() not in second.data


@pytest.mark.parametrize("follow_what", ["file", "directory"])
def test_watch_reports_a_secret_written_to_a_utf16_log(
    tmp_path: Path, start_watch, watch_env, follow_what: str
) -> None:
    (tmp_path / "logs").mkdir()
    log = tmp_path / "logs" / "service.log"
    secret = mint("jit_")
    log.write_bytes(f"service started\nretrying with token={secret}\n".encode("utf-16"))
    (tmp_path / "logs" / "blob.bin").write_bytes(b"\x7fELF\x00\x01" + f"token={mint('jit_')}\n".encode())
    target = log if follow_what == "file" else log.parent
    process, out, err = start_watch([str(target), "-f", "jsonl"], watch_env)
    assert wait_until(lambda: any(row.get("rule") == "broker-engine-token" for row in out.rows()), timeout=60)
    process.terminate()
    process.wait(timeout=30)
    [row] = [row for row in out.rows() if row.get("rule") == "broker-engine-token"]
    assert row["line"] == 2
    assert secret not in "".join(out.lines + err.lines)
    assert json.dumps(row).count(str(log)) == 1
