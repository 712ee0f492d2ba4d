"""Reading trees of files: small files come whole and many to a batch, large ones in chunks and in
order; with ``--jobs`` the helper jobs take only large files; the walk keeps ``os.walk``'s order."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from jitsec.connectors.sources.files import (
    BATCH_FILES,
    CHUNK_SIZE,
    FileEntry,
    FilesSource,
    PathFeed,
    WalkReport,
    walk,
)

from jitsec.kernel.credential_format import mint
from jitsec.kernel.ports import SourceErrors


def small_tree(root: Path, count: int) -> list[Path]:
    paths = []
    for number in range(count):
        path = root / f"f{number:04d}.log"
        path.write_text(f"line {number}\n")
        paths.append(path)
    return paths


def test_small_files_come_whole_in_batches_and_a_large_one_in_order(tmp_path: Path) -> None:
    small = small_tree(tmp_path, 2 * BATCH_FILES)
    large = tmp_path / "f0300.big"  # sorts among the small ones, after the first batch
    large.write_bytes(b"x" * (CHUNK_SIZE + 10) + b"\n")
    source = FilesSource([tmp_path])
    batches = list(source.batches())
    origins = [chunk.origin.path for batch in batches for chunk in batch]
    expected = sorted([*map(str, small), str(large), str(large)])  # the large file is two chunks
    assert origins == expected
    assert all(chunk.whole for batch in batches for chunk in batch if not chunk.origin.path.endswith(".big"))
    assert not any(chunk.whole for batch in batches for chunk in batch if chunk.origin.path.endswith(".big"))
    assert max(len(batch) for batch in batches) == BATCH_FILES
    assert all(len(batch) == 1 for batch in batches if batch[0].origin.path.endswith(".big"))
    assert source.files == len(small) + 1


def test_helper_jobs_take_only_large_files_and_every_file_is_taken_once(tmp_path: Path) -> None:
    entries = [FileEntry(tmp_path / f"{n}", CHUNK_SIZE + 1 if n % 3 == 0 else 10) for n in range(30)]
    feed = PathFeed(entries)
    helper = [feed.next(large_only=True) for _ in range(4)]
    assert all(entry is not None and entry.size > CHUNK_SIZE for entry in helper)
    rest = []
    while (entry := feed.next()) is not None:
        rest.append(entry)
    assert sorted([*helper, *rest], key=lambda e: int(Path(e.path).name)) == entries
    assert feed.next(large_only=True) is None


def test_the_walk_keeps_os_walk_order_and_does_not_follow_directory_links(tmp_path: Path) -> None:
    for directory in ("b", "a/z", "a/c", "b/d"):
        (tmp_path / directory).mkdir(parents=True, exist_ok=True)
        for name in ("2.txt", "1.txt"):
            (tmp_path / directory / name).write_text("x\n")
    (tmp_path / "a" / "link").symlink_to(tmp_path / "b")
    (tmp_path / "a" / "dangling").symlink_to(tmp_path / "nowhere")
    errors, report = SourceErrors(), WalkReport()
    walked = [str(entry.path) for entry in walk([tmp_path], errors, report)]
    expected = []
    for directory, dirnames, filenames in os.walk(tmp_path):
        dirnames.sort()
        expected += [os.path.join(directory, name) for name in sorted(filenames) if name != "dangling"]
    assert walked == expected
    assert errors.counts == {"unreadable": 1} and "dangling" in errors.examples[0]


def test_jobs_find_the_same_as_one_job(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    small_tree(tree, 600)
    for number in range(0, 600, 97):
        with (tree / f"f{number:04d}.log").open("a") as handle:
            handle.write(f"token={mint('jit_')}\n")
    (tree / "f0300.big").write_bytes(b"y " * CHUNK_SIZE + f"\ntoken={mint('jit_')}\n".encode())
    env = {**os.environ, "JITSEC_FINGERPRINT_KEY": "33" * 32}

    def findings(jobs: int) -> list[tuple[str, int, int]]:
        result = subprocess.run(["jitsec", "scan", "-j", str(jobs), "-f", "jsonl", str(tree)],
                                capture_output=True, text=True, env=env, check=False)
        assert result.returncode == 1, result.stderr
        rows = [json.loads(line) for line in result.stdout.splitlines()]
        return sorted((row["path"], row["line"], row["column"]) for row in rows)

    one = findings(1)
    assert len(one) == 8
    assert findings(4) == one
