"""`jitsec watch` on a log written at ~20,000 lines/s, rotated by rename every second and once
truncated in place (copytruncate): every planted secret is reported once, at its own line, including
secrets on the last line of a rotated file (once without its newline) and just beyond the overlap the
stream rescans."""

from __future__ import annotations

import hashlib
import shutil
import threading
import time
from collections import Counter
from pathlib import Path

from jitsec.kernel.credential_format import live_lookup, mint
from jitsec.testing import wait_until

from .conftest import Lines

RATE = 20_000  # lines per second
LINES = 100_000
ROTATE_EVERY = 20_000  # lines: a rename rotation a second
TRUNCATE_AT = 50_000  # line: a copytruncate instead of that rotation
PLANT_EVERY = 997
UNTERMINATED = 2 * ROTATE_EVERY - 1  # the last line before this rotation has no newline


def planted_at(number: int) -> bool:
    """Every PLANT_EVERY lines, and around each rotation: its last line and ~18 KiB before it (beyond
    the stream's rescanned overlap)."""
    return number % PLANT_EVERY == 0 or (number + 1) % ROTATE_EVERY == 0 or (number + 300) % ROTATE_EVERY == 0


class Writer:
    """Writes LINES lines at RATE, plants a secret every PLANT_EVERY lines, rotates and truncates;
    ``planted`` maps each secret's SHA-256 to the (path, line) it was written at."""

    def __init__(self, log: Path, out: Lines) -> None:
        self.log, self.out = log, out
        self.planted: dict[str, int] = {}
        self.failure: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def reported(self) -> set[str]:
        return {row["credential_lookup"] for row in self.out.rows() if "credential_lookup" in row}

    def _run(self) -> None:
        try:
            self._write()
        except BaseException as error:
            self.failure = error

    def _write(self) -> None:
        handle = self.log.open("a")
        line_in_file, began, rotations = 1, time.monotonic(), 0  # after the boot line
        for number in range(1, LINES + 1):
            if number % ROTATE_EVERY == 0 or number == TRUNCATE_AT:
                handle.close()
                if number == TRUNCATE_AT:  # copytruncate; the copy's lines were read already
                    assert wait_until(lambda: set(self.planted) <= self.reported(), timeout=60)
                    shutil.copyfile(self.log, self.log.with_suffix(".copy"))
                    self.log.open("r+").truncate(0)
                else:
                    rotations += 1
                    self.log.rename(self.log.with_suffix(f".log.{rotations}"))
                handle, line_in_file = self.log.open("a"), 0
            line_in_file += 1
            if planted_at(number):
                secret = mint("jit_")
                self.planted[live_lookup(hashlib.sha256(secret.encode()).hexdigest())] = line_in_file
                end = "" if number == UNTERMINATED else "\n"
                handle.write(f"n={number} retrying upstream call with token={secret}{end}")
            else:
                handle.write(f"n={number} GET /api/v1/items?page={number % 50} 200 {number % 997}ms\n")
            if number % 200 == 0:
                handle.flush()
                pause = began + number / RATE - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
        handle.close()


def test_every_secret_once_at_its_line_through_rotation_and_truncation_under_load(
    tmp_path: Path, start_watch, watch_env: dict[str, str]
) -> None:
    log = tmp_path / "app.log"
    log.write_text(f"boot check token={mint('jit_')}\n")  # reported once the watcher follows the file
    process, out, _ = start_watch([str(log), "-f", "jsonl"], watch_env)
    assert wait_until(out.rows, timeout=60)
    writer = Writer(log, out)
    writer.thread.start()
    writer.thread.join(timeout=120)
    assert writer.failure is None, writer.failure
    assert wait_until(lambda: set(writer.planted) <= writer.reported(), timeout=60)
    time.sleep(1.0)  # room for a late duplicate, if one were coming
    process.terminate()
    assert process.wait(timeout=60) == 0
    rows = [row for row in out.rows() if row.get("credential_lookup") in writer.planted]
    counts = Counter(row["credential_lookup"] for row in rows)
    assert [sha for sha, count in counts.items() if count > 1] == []
    wrong = [(row["line"], writer.planted[row["credential_lookup"]]) for row in rows
             if row["line"] != writer.planted[row["credential_lookup"]]]
    assert wrong == []
    assert {row["path"] for row in rows} == {str(log)}
