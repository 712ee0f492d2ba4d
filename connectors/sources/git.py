"""Every blob in a repository's history, each scanned once, located by the commit that introduced it.

Two ``git`` processes stream side by side, so memory stays bounded whatever the history's size:

- ``git log --all --topo-order --reverse --raw -z`` lists, oldest first, each commit and the blobs
  it added or modified (merges against their first parent, so evil merges are covered). The first
  commit to show a blob is the one that introduced it; later appearances are skipped by object id.
- ``git cat-file --batch`` hands out each new blob's content, which is cut into line-aligned chunks
  with ``GitOrigin(commit, path)`` so that findings say commit, path and line.

Binary blobs (a NUL byte in the first 8000 bytes, git's own test) and submodule entries are skipped
and counted in ``stats``. Only the set of seen object ids grows with the history (20 bytes each).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from connectors.base import SourceErrors
from connectors.sources.linebuffer import LineAssembler
from scanner.model import Chunk, GitOrigin

DEFAULT_CHUNK_SIZE = 256 * 1024
BINARY_PROBE = 8000
_SUBMODULE_MODE = b"160000"


class GitError(Exception):
    """git is missing, or the path is not a repository."""


@dataclass(slots=True)
class GitStats:
    """What a history scan went through; reported at the end of a scan."""

    commits: int = 0
    blobs_scanned: int = 0
    blobs_binary: int = 0
    blobs_repeated: int = 0  # appearances of an already scanned blob in later commits
    bytes_scanned: int = 0


@dataclass(frozen=True, slots=True)
class BlobChange:
    """One blob a commit added or modified."""

    commit: str
    path: str
    blob: str


def git_executable() -> str:
    found = shutil.which("git")
    if found is None:
        raise GitError("git is not installed (needed for git: sources and hooks)")
    return found


def check_repository(repo: Path) -> Path:
    """The work tree or bare repository at ``repo``, or a clear error."""
    result = subprocess.run(
        [git_executable(), "-C", str(repo), "rev-parse", "--git-dir"],
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        reason = result.stderr.decode(errors="replace").strip().splitlines()
        raise GitError(f"{repo} is not a git repository ({reason[-1] if reason else 'unknown error'})")
    return repo


def blob_changes(repo: Path, revisions: Sequence[str] = ("--all",)) -> Iterator[BlobChange]:
    """Added or modified blobs, oldest commit first, as the log streams them."""
    command = [
        git_executable(), "-C", str(repo), "-c", "core.quotePath=false", "log", *revisions,
        "--topo-order", "--reverse", "--raw", "--no-abbrev", "--no-renames",
        "--diff-merges=first-parent", "--format=tformat:%x00%H", "-z", "--",
    ]  # fmt: skip
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as process:
        assert process.stdout is not None
        try:
            yield from _parse_raw_log(_nul_tokens(process.stdout))
        finally:
            process.kill()


def _nul_tokens(stream: IO[bytes]) -> Iterator[bytes]:
    rest = b""
    while block := stream.read(1 << 16):
        parts = (rest + block).split(b"\0")
        rest = parts.pop()
        yield from parts
    if rest:
        yield rest


def _parse_raw_log(tokens: Iterator[bytes]) -> Iterator[BlobChange]:
    """Tokens of ``git log --raw -z --format=%x00%H``: commit ids, and ``:modes ids status`` headers
    each followed by a path token."""
    commit = ""
    for raw in tokens:
        token = raw.lstrip(b"\n")
        if not token:
            continue
        if token.startswith(b":"):
            path = next(tokens, b"")
            fields = token[1:].split()
            if len(fields) < 5:
                continue
            new_mode, new_blob, status = fields[1], fields[3], fields[4]
            if status[:1] in (b"D", b"U") or new_mode == _SUBMODULE_MODE or not new_blob.strip(b"0"):
                continue
            yield BlobChange(commit, path.decode("utf-8", "surrogateescape"), new_blob.decode())
        else:
            commit = token.decode()
            yield BlobChange(commit, "", "")  # marks a commit boundary, for counting


class BlobReader:
    """A long-running ``git cat-file --batch``: one request, one streamed answer at a time."""

    def __init__(self, repo: Path) -> None:
        self._process = subprocess.Popen(
            [git_executable(), "-C", str(repo), "cat-file", "--batch"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )

    def open(self, blob: str) -> int | None:
        """Ask for a blob; its size, or None when git does not have it. Read it with ``read``."""
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write(blob.encode() + b"\n")
        self._process.stdin.flush()
        header = self._process.stdout.readline().split()
        if len(header) != 3 or header[1] != b"blob":
            return None
        return int(header[2])

    def read(self, size: int, chunk_size: int) -> Iterator[bytes]:
        """The announced ``size`` bytes in pieces; must be consumed fully (``skip`` otherwise)."""
        assert self._process.stdout is not None
        remaining = size
        while remaining > 0:
            data = self._process.stdout.read(min(chunk_size, remaining))
            if not data:
                raise GitError("git cat-file ended in the middle of a blob")
            remaining -= len(data)
            yield data
        self._process.stdout.read(1)  # the newline after each answer

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        for stream in (self._process.stdin, self._process.stdout):
            if stream is not None:
                stream.close()


class GitHistorySource:
    """Chunks of every blob reachable from ``revisions`` (all refs by default), each blob once."""

    def __init__(
        self,
        repo: Path | str,
        *,
        revisions: Sequence[str] = ("--all",),
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        self.repo = Path(repo)
        self.revisions = tuple(revisions)
        self.chunk_size = chunk_size
        self.errors = SourceErrors()
        self.stats = GitStats()
        self._closed = False

    def chunks(self) -> Iterator[Chunk]:
        check_repository(self.repo)
        seen: set[bytes] = set()
        reader = BlobReader(self.repo)
        try:
            for change in blob_changes(self.repo, self.revisions):
                if self._closed:
                    return
                if not change.blob:
                    self.stats.commits += 1
                    continue
                key = bytes.fromhex(change.blob)
                if key in seen:
                    self.stats.blobs_repeated += 1
                    continue
                seen.add(key)
                yield from self._blob_chunks(reader, change)
        finally:
            reader.close()

    def _blob_chunks(self, reader: BlobReader, change: BlobChange) -> Iterator[Chunk]:
        size = reader.open(change.blob)
        if size is None:
            self.errors.record("missing-object", f"{change.blob[:12]} ({change.path})")
            return
        origin = GitOrigin(change.commit, change.path)
        assembler = LineAssembler(max_partial=self.chunk_size)
        first = True
        binary = False
        for data in reader.read(size, self.chunk_size):
            if first:
                first = False
                binary = b"\0" in data[:BINARY_PROBE]
            if binary:
                continue  # drain the answer without scanning it
            piece = assembler.feed(data, 0.0)
            if piece is not None:
                yield Chunk(piece.data, origin, piece.offset, piece.line)
        if binary:
            self.stats.blobs_binary += 1
            return
        piece = assembler.flush(0.0, force=True)
        if piece is not None:
            yield Chunk(piece.data, origin, piece.offset, piece.line)
        self.stats.blobs_scanned += 1
        self.stats.bytes_scanned += size

    def acknowledge(self, chunk: Chunk) -> None:
        """History is immutable and rescanned whole; nothing to commit."""

    def close(self) -> None:
        self._closed = True
