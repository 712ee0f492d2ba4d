"""Whatever the input, no crash, bounded memory, a clear message, and the scan goes on."""

from __future__ import annotations

import os
import threading
import tracemalloc
from pathlib import Path

import pytest
from click.testing import CliRunner
from jitsec.connectors.sources.files import FileEntry, FilesSource, PathFeed
from jitsec.connectors.sources.stdin import StdinSource
from jitsec.scanner.engine import Scanner

from jitsec.cli import main
from jitsec.pipeline.runner import run_sources
from jitsec.pipeline.stages import Callback

AWS = b"AKIA2OGYBAH6STMMNXNN"


def scan_cli(sample_pack: Path, *paths: str):
    args = ["scan", "--no-default-rules", "--rules", str(sample_pack), "-f", "jsonl", *paths]
    return CliRunner().invoke(main, args, catch_exceptions=False)


def test_invalid_utf8_and_late_nul_bytes_are_scanned(tmp_path: Path, sample_pack: Path) -> None:
    path = tmp_path / "mixed.log"
    path.write_bytes(b"ok\n" * 5000 + b"\xff\xfe\xc3(\x00\x00 key=" + AWS + b"\n\x80\x81")
    result = scan_cli(sample_pack, str(path))
    assert result.exit_code == 1 and '"line":5001' in result.stdout


def test_binary_files_are_skipped_and_counted(tmp_path: Path, sample_pack: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "blob.bin").write_bytes(b"\x00\x01" + AWS)
    result = scan_cli(sample_pack, str(tmp_path / "in"))
    assert result.exit_code == 0 and "1 binary skipped" in result.stderr


def test_a_sparse_2gb_file_is_skipped_without_reading_it(tmp_path: Path, sample_pack: Path) -> None:
    path = tmp_path / "huge.img"
    with open(path, "wb") as handle:
        handle.truncate(2 * 1024**3)
    result = scan_cli(sample_pack, str(path))
    assert result.exit_code == 0 and "1 binary skipped" in result.stderr


@pytest.mark.parametrize("head", [b"", b"a short first line\n"], ids=["alone", "after-a-short-line"])
def test_one_huge_line_is_scanned_in_bounded_memory(tmp_path: Path, hs_scanner: Scanner, head: bytes) -> None:
    """Also when a short line comes first: its newline must not keep the whole long line buffered
    (that was quadratic: every chunk copied and rescanned the growing buffer)."""
    size = 24 * 1024 * 1024
    path = tmp_path / "one-line.log"
    positions = [len(head) + 10, size // 2, size - 100, 3 * 1024 * 1024 + 5]
    with open(path, "wb") as handle:
        data = bytearray(head + b"ab " * ((size - len(head)) // 3))
        for position in positions:
            data[position:position + len(AWS) + 2] = b" " + AWS + b" "
        handle.write(data)
        del data
    source = FilesSource([path])
    found = []
    tracemalloc.start()
    run_sources([source], hs_scanner, [Callback(lambda chunk, fs: found.extend(fs))])
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert sorted(f.offset for f in found) == sorted(p + 1 for p in positions)
    assert peak < 16 * 1024 * 1024  # a few chunks, not the 24 MiB line


@pytest.mark.timeout(60)
def test_fifos_devices_and_symlink_loops_do_not_block_or_crash(tmp_path: Path, sample_pack: Path) -> None:
    root = tmp_path / "tree"
    root.mkdir()
    (root / "real.env").write_bytes(b"KEY=" + AWS + b"\n")
    os.mkfifo(root / "pipe")
    (root / "loop").symlink_to(root / "loop")
    (root / "dangling").symlink_to(root / "nowhere")
    (root / "dirloop").symlink_to(root)
    result = scan_cli(sample_pack, str(root), "/dev/null", "/dev/zero")
    assert result.exit_code == 2  # the loop and the dangling link could not be read
    assert result.stdout.count('"rule"') == 1  # the real file was still scanned, once
    assert "1 special files skipped" in result.stderr  # the pipe inside the tree
    assert "Too many levels of symbolic links" in result.stderr and "dangling" in result.stderr
    for device in ("/dev/null", "/dev/zero"):  # named, so never silently skipped
        assert f"{device}: not a regular file, directory or pipe" in result.stderr


@pytest.mark.timeout(60)
def test_a_named_pipe_is_read_like_process_substitution(tmp_path: Path, sample_pack: Path) -> None:
    pipe = tmp_path / "leaked.log"
    os.mkfifo(pipe)

    def write() -> None:
        with pipe.open("wb") as writer:
            writer.write(b"line one\nKEY=" + AWS + b"\n")

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    result = scan_cli(sample_pack, str(pipe))
    writer.join(10)
    assert result.exit_code == 1, result.stderr  # found, not "1 special file skipped" and exit 0
    assert result.stdout.count('"rule"') == 1 and '"line":2' in result.stdout


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_files_are_reported(tmp_path: Path, sample_pack: Path) -> None:
    (tmp_path / "in").mkdir()
    path = tmp_path / "in" / "secret.env"
    path.write_bytes(b"KEY=" + AWS)
    path.chmod(0)
    result = scan_cli(sample_pack, str(tmp_path / "in"))
    assert result.exit_code == 2 and "Permission denied" in result.stderr


def test_a_file_deleted_while_being_read_is_finished(tmp_path: Path, hs_scanner: Scanner) -> None:
    path = tmp_path / "rotating.log"
    path.write_bytes(b"filler\n" * 200_000 + b"KEY=" + AWS + b"\n")
    source = FilesSource([path], chunk_size=65536)
    chunks = source.chunks()
    first = next(chunks)
    path.unlink()
    rest = list(chunks)
    assert sum(len(c.data) for c in [first, *rest]) == 7 * 200_000 + 25
    assert rest[0].line == 1 + first.data.count(b"\n")
    assert source.errors.total == 0


def test_a_file_gone_before_it_is_opened_is_an_error_not_a_crash(tmp_path: Path, hs_scanner: Scanner) -> None:
    present = tmp_path / "present.log"
    present.write_bytes(b"KEY=" + AWS + b"\n")
    feed = PathFeed([FileEntry(tmp_path / "vanished.log", 10), FileEntry(present, 25)])
    source = FilesSource(feed)
    found = []
    stats = run_sources([source], hs_scanner, [Callback(lambda chunk, fs: found.extend(fs))])
    assert len(found) == 1
    assert stats.errors.counts == {"unreadable": 1} and "vanished.log" in stats.errors.examples[0]


def test_stdin_source_reads_a_real_pipe_in_large_chunks() -> None:
    read_end, write_end = os.pipe()
    payload = (b"line of log text\n" * 40_000) + b"KEY=" + AWS + b"\n"
    with os.fdopen(read_end, "rb") as reader:
        writer = threading.Thread(target=lambda: (os.write(write_end, payload), os.close(write_end)))
        writer.start()
        chunks = list(StdinSource(reader, chunk_size=1 << 20).chunks())
        writer.join()
    assert b"".join(c.data for c in chunks) == payload
    assert [c.offset for c in chunks] == [sum(len(c.data) for c in chunks[:i]) for i in range(len(chunks))]
    lines_before = [sum(c.data.count(b"\n") for c in chunks[:i]) for i in range(len(chunks))]
    assert [c.line for c in chunks] == [1 + count for count in lines_before]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32"])
def test_a_utf16_or_utf32_log_is_read_as_text(tmp_path: Path, sample_pack: Path, encoding: str) -> None:
    """A Windows event export or a PowerShell transcript is text, not binary: its secret is found."""
    path = tmp_path / f"windows-{encoding}.log"
    text = "".join(f"2026-12-06 line {n} ok\r\n" for n in range(40)) + f"KEY={AWS.decode()}\r\nend\r\n"
    path.write_bytes(text.encode(encoding))
    result = scan_cli(sample_pack, str(path))
    assert result.exit_code == 1, result.stderr
    assert '"line":41' in result.stdout and "binary skipped" not in result.stderr


def test_a_binary_with_nul_bytes_is_still_skipped(tmp_path: Path, sample_pack: Path) -> None:
    path = tmp_path / "core.dump"
    path.write_bytes(bytes(range(256)) * 64 + b"KEY=" + AWS + b"\n")
    result = scan_cli(sample_pack, str(path))
    assert result.exit_code == 0 and "1 binary skipped" in result.stderr
