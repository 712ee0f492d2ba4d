"""The alert sink is down while the scanner is killed with SIGKILL and started again: once the sink is
back every alert arrives exactly once, in the order the leaks were written."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from jitsec.kernel.credential_format import mint
from jitsec.testing import wait_until

BATCH = 10  # leaks written before the crash, and as many after it


def spooled(state: Path) -> int:
    """Payloads waiting in the scanner's on-disk alert spools (read by the test, not the scanner)."""
    total = 0
    for path in state.rglob("*"):
        if path.is_file() and path.read_bytes()[:16] == b"SQLite format 3\x00":
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
                if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'queue'").fetchone():
                    total += db.execute("SELECT count(*) FROM queue").fetchone()[0]
    return total


def append_leaks(log: Path, first: int) -> None:
    with log.open("a") as handle:
        for n in range(first, first + BATCH):
            handle.write(f"request {n} served\n" * 3 + f"n={n} retrying with token={mint('jit_')}\n")


def line_of(body: dict) -> int:
    [location] = body["locations"]
    return int(location.rpartition(":")[2])


def test_every_alert_arrives_once_in_order_after_a_crash_during_a_sink_outage(
    tmp_path: Path, http_receiver, start_watch, watch_env: dict[str, str]
) -> None:
    log, state = tmp_path / "app.log", Path(watch_env["JITSEC_STATE_DIR"])
    log.write_text("service started\n")
    arguments = [str(log), "-f", "jsonl", "--alert", f"webhook:{http_receiver.url}",
                 "--checkpoint-dir", str(tmp_path / "checkpoints")]
    append_leaks(log, 0)
    first, _, _ = start_watch(arguments, watch_env)
    assert wait_until(lambda: spooled(state) == BATCH, timeout=60, interval=0.1)
    first.kill()  # SIGKILL with every alert still queued: the receiver has not been listening
    first.wait(timeout=30)

    second, _, _ = start_watch(arguments, watch_env)
    append_leaks(log, BATCH)
    assert wait_until(lambda: spooled(state) == 2 * BATCH, timeout=60, interval=0.1)
    http_receiver.start()
    assert wait_until(lambda: len(http_receiver.bodies) >= 2 * BATCH and spooled(state) == 0, timeout=60)
    time.sleep(1.0)  # room for a duplicate to show up, if one were coming
    lines = [line_of(body) for body in http_receiver.bodies]
    assert lines == sorted(lines) and len(set(lines)) == len(lines) == 2 * BATCH
    assert lines == [5 + 4 * n for n in range(2 * BATCH)]  # each leak's own line, in writing order
    second.kill()
