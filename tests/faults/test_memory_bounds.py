"""Peak memory of the scanning process stays under 300 MB whatever the input: a very long line after a
short one (once quadratic), a giant sparse file, and the same long line followed by `jitsec watch`.
Each secret is still found, at its own line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jitsec.kernel.credential_format import mint

from .conftest import JITSEC, jitsec_env, peak_rss_mib

CEILING_MIB = 300
MIB = 1024 * 1024


def long_line_file(path: Path, size: int) -> tuple[str, int, int]:
    """A short first line, then one line of ``size`` bytes ending with a secret: (secret, line, column)."""
    secret = mint("jit_")
    block = b"a=1 b=2 " * (MIB // 8)
    with path.open("wb") as handle:
        handle.write(b"2026-12-07T02:00:00Z service started\n")
        for _ in range(size // len(block)):
            handle.write(block)
        handle.write(f" token={secret}\n".encode())
    return secret, 2, size // len(block) * len(block) + len(" token=") + 1


def sparse_file(path: Path, size: int) -> tuple[str, int, int]:
    """An 8 KiB text header, holes up to ``size`` bytes, and a secret on the last line: (secret, line,
    column)."""
    secret = mint("jit_")
    header = b"".join(f"{n:05d} request served\n".encode() for n in range(400))[:8192]
    with path.open("wb") as handle:
        handle.write(header)
        handle.truncate(size)
        handle.seek(size)
        handle.write(f"\ntoken={secret}\n".encode())
    return secret, header.count(b"\n") + 2, len("token=") + 1


def rows(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


@pytest.mark.parametrize("shape", ["long line", "sparse"])
def test_scan_stays_under_the_memory_ceiling(tmp_path: Path, shape: str) -> None:
    target = tmp_path / "input.log"
    secret, line, column = long_line_file(target, 200 * MIB) if shape == "long line" else sparse_file(
        target, 600 * MIB)
    output = tmp_path / "findings.jsonl"
    code, peak = peak_rss_mib([JITSEC, "scan", "-f", "jsonl", "-o", str(output), str(target)],
                              env=jitsec_env(tmp_path))
    assert code == 1
    [found] = rows(output.read_text())
    assert (found["line"], found["column"]) == (line, column)
    assert secret not in output.read_text()
    assert peak < CEILING_MIB, f"peak RSS {peak:.0f} MiB"


def test_watch_stays_under_the_memory_ceiling_on_a_long_line(tmp_path: Path) -> None:
    target = tmp_path / "app.log"
    secret, line, column = long_line_file(target, 128 * MIB)
    output = tmp_path / "findings.jsonl"
    code, peak = peak_rss_mib([JITSEC, "watch", str(target), "-f", "jsonl", "-o", str(output),
                               "--exit-when-idle", "1"], env=jitsec_env(tmp_path))
    assert code == 1
    [found] = rows(output.read_text())
    assert (found["line"], found["column"]) == (line, column)
    assert secret not in output.read_text()
    assert peak < CEILING_MIB, f"peak RSS {peak:.0f} MiB"
