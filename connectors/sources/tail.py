"""Follow one file like ``tail -F``: through rotation by rename and by truncation, across restarts.

The reader polls (every ``poll_interval`` seconds, 50 ms by default) rather than waiting on inotify,
because polling also sees truncation, replacement and files on network mounts, and 50 ms is well
inside the leak-response latency budget. Each chunk ends at a line boundary when it can (see
``linebuffer``). Positions are checkpointed only once acknowledged, keyed by the file's path; a
checkpoint names the inode and a hash of the file's first bytes, so a file replaced while the daemon
was down is read from its start rather than from a stale offset, and a file rotated away while the
daemon was down is found by its inode in the same directory and finished first.

Faults never end the stream: a missing or unreadable file is counted and retried until it appears.
UTF-16/32 text (by byte-order mark, or mostly ASCII with every other byte NUL) is decoded to UTF-8
before scanning.
"""

from __future__ import annotations

import hashlib
import os
import stat
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterator
from pathlib import Path

from jitsec.connectors.checkpoints import (
    HEAD_BYTES,
    CheckpointError,
    CheckpointStore,
    FilePosition,
    is_same_file,
)
from jitsec.connectors.sources.files import BINARY_SNIFF
from jitsec.connectors.sources.linebuffer import LineAssembler, Piece
from jitsec.connectors.sources.wide_text import WideText

from jitsec.kernel.ports import ChunkReader, SourceErrors
from jitsec.kernel.records import Chunk, FileOrigin

DEFAULT_CHUNK_SIZE = 256 * 1024
RETRY_INTERVAL = 1.0  # between attempts to open a missing or unreadable file


class _OpenFile:
    """The file currently being read, with its identity and where reading stands."""

    def __init__(self, path: str, fd: int, assembler: LineAssembler) -> None:
        self.path = path
        self.fd = fd
        stat = os.fstat(fd)
        self.device = stat.st_dev
        self.inode = stat.st_ino
        self.assembler = assembler
        self.read_offset = assembler.offset + assembler.pending  # where the next os.read starts
        self.head_len = 0
        self.head_sha256 = ""
        self.wide: WideText | None = None  # UTF-16/32 text: decoded before scanning
        self.wide_checked = False  # looked at the file's first bytes for that

    def text_of(self, piece: Piece) -> tuple[bytes, int, int]:
        """The piece as scanned text: (data, offset, line); UTF-16/32 files decoded to UTF-8, with
        offsets counting that text (checkpoints keep the file's own offsets)."""
        if not self.wide_checked:
            self.wide_checked = True
            self.wide = WideText.of(os.pread(self.fd, BINARY_SNIFF, 0))
        if self.wide is None:
            return piece.data, piece.offset, piece.line
        return self.wide.convert(piece.data, piece.offset, piece.line)

    def position_after(self, piece: Piece) -> FilePosition:
        end = piece.offset + len(piece.data)
        if self.head_len < HEAD_BYTES and end > self.head_len:
            self.head_len = min(HEAD_BYTES, end)
            self.head_sha256 = hashlib.sha256(os.pread(self.fd, self.head_len, 0)).hexdigest()
        return FilePosition(
            path=self.path,
            device=self.device,
            inode=self.inode,
            offset=end,
            line=piece.line + piece.data.count(b"\n"),
            head_len=self.head_len,
            head_sha256=self.head_sha256,
        )

    def head_changed(self) -> bool:
        """The first bytes differ from those read: truncated and rewritten past our offset between
        two polls (copytruncate under a busy writer), which a size check alone cannot see."""
        if self.head_len == 0:
            return False
        return hashlib.sha256(os.pread(self.fd, self.head_len, 0)).hexdigest() != self.head_sha256


class TailSource(ChunkReader):
    """Chunks of one file as it grows. ``follow=False`` reads to the end once and stops."""

    def __init__(
        self,
        path: Path | str,
        *,
        follow: bool = True,
        checkpoints: CheckpointStore | None = None,
        from_end: bool = False,
        poll_interval: float = 0.05,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        partial_timeout: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if poll_interval <= 0 or chunk_size < 1:
            raise ValueError("poll_interval must be > 0 and chunk_size >= 1")
        self.path = str(path)
        self.follow = follow
        self.checkpoints = checkpoints
        self.from_end = from_end
        self.poll_interval = poll_interval
        self.chunk_size = chunk_size
        self.partial_timeout = partial_timeout
        self.clock = clock
        self.errors = SourceErrors()
        self.rotations = 0
        self.truncations = 0
        self._key = f"tail:{os.path.abspath(self.path)}"
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._unacked: deque[tuple[Chunk, FilePosition]] = deque()
        self._acked: FilePosition | None = None
        self._first_open = True
        self._reported: set[str] = set()  # problem kinds already counted in this episode
        self.opened = threading.Event()  # set once the file has been opened and positioned
        self._saved: FilePosition | None = None  # the checkpoint found at start
        self._progress: tuple[int, int, int] | None = None  # (device, inode, offset) of the last read

    # -- Source protocol -------------------------------------------------------------------------

    def chunks(self) -> Iterator[Chunk]:
        self._saved = self._load_checkpoint()
        yield from self._catch_up_rotated()
        current: _OpenFile | None = None
        try:
            while not self._stop.is_set():
                if current is None:
                    current = self._open()
                    if current is None:
                        if not self.follow:
                            return
                        self._stop.wait(RETRY_INTERVAL)
                        continue
                data = self._read(current)
                if data is None:  # read error: counted; reopen
                    os.close(current.fd)
                    current = None
                    continue
                if data:
                    piece = current.assembler.feed(data, self.clock())
                    if piece is not None:
                        yield self._chunk(current, piece)
                    continue
                if not self.follow:
                    yield from self._drain(current)
                    return
                current = yield from self._at_end(current)
        finally:
            if current is not None:
                os.close(current.fd)

    def acknowledge(self, chunk: Chunk) -> None:
        """``chunk`` and every chunk before it are handled; a chunk not pending (acknowledged already,
        or not ours) changes nothing."""
        with self._lock:
            if not any(pending is chunk for pending, _ in self._unacked):
                return
            while self._unacked:
                pending, position = self._unacked.popleft()
                self._acked = position
                if pending is chunk:
                    break
            acked = self._acked
        if acked is not None and self.checkpoints is not None:
            self._save(acked, durable=False)

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            acked = self._acked
        if acked is not None and self.checkpoints is not None:
            self._save(acked, durable=True)

    def lag(self) -> int | None:
        """Bytes in the file not read yet (the daemon's consumer-lag metric); None before the first read."""
        progress = self._progress
        if progress is None:
            return None
        try:
            info = os.stat(self.path)
        except OSError:
            return None
        if (info.st_dev, info.st_ino) != progress[:2]:
            return info.st_size  # rotated: the new file is all unread
        return max(0, info.st_size - progress[2])

    # -- internals ---------------------------------------------------------------------------------

    def _chunk(self, current: _OpenFile, piece: Piece) -> Chunk:
        data, offset, line = current.text_of(piece)
        chunk = Chunk(data=data, origin=FileOrigin(current.path), offset=offset, line=line,
                      read_at=piece.read_at)
        position = current.position_after(piece)
        with self._lock:
            self._unacked.append((chunk, position))
        return chunk

    def _save(self, position: FilePosition, *, durable: bool) -> None:
        assert self.checkpoints is not None
        try:
            self.checkpoints.save_position(self._key, position, durable=durable)
        except CheckpointError as exc:
            self.errors.record("checkpoint", str(exc))

    def _read(self, current: _OpenFile) -> bytes | None:
        try:
            data = os.read(current.fd, self.chunk_size)
        except OSError as exc:
            self.errors.record("read-error", f"{self.path}: {exc.strerror}")
            return None
        current.read_offset += len(data)
        self._progress = (current.device, current.inode, current.read_offset)
        return data

    def _at_end(self, current: _OpenFile) -> Generator[Chunk, None, _OpenFile | None]:
        """At end of file: release an overdue partial line, wait a poll interval, then look for
        rotation or truncation before reading on (checking after the wait, right before the next read,
        is what lets a truncate-and-rewrite within one interval be seen). Returns the file to go on
        reading (None after a rotation: reopen by path)."""
        piece = current.assembler.flush(self.clock())
        if piece is not None:
            yield self._chunk(current, piece)
        if self._stop.wait(self.poll_interval):
            return current
        change = self._replaced_or_truncated(current)
        if change == "truncated":  # what is past our offset now is new content: do not read it here
            self.truncations += 1
            piece = current.assembler.flush(self.clock(), force=True)
            if piece is not None:
                yield self._chunk(current, piece)
            os.lseek(current.fd, 0, os.SEEK_SET)
            current.assembler = LineAssembler(partial_timeout=self.partial_timeout)
            current.read_offset = 0
            current.head_len = 0
            current.wide_checked = False  # new content: maybe another encoding
        elif change == "rotated":
            self.rotations += 1
            yield from self._drain(current)
            os.close(current.fd)
            return None
        return current

    def _drain(self, current: _OpenFile) -> Iterator[Chunk]:
        """Whatever the writer added before rotating, then the held partial line."""
        while (data := self._read(current)):
            piece = current.assembler.feed(data, self.clock())
            if piece is not None:
                yield self._chunk(current, piece)
        piece = current.assembler.flush(self.clock(), force=True)
        if piece is not None:
            yield self._chunk(current, piece)

    def _replaced_or_truncated(self, current: _OpenFile) -> str | None:
        try:
            by_fd = os.fstat(current.fd)
        except OSError:
            return "rotated"
        if by_fd.st_size < current.read_offset or current.head_changed():
            return "truncated"
        try:
            by_path = os.stat(self.path)
        except FileNotFoundError:
            return None  # renamed away, replacement not there yet: keep reading the old one
        except OSError:
            return None
        if (by_path.st_dev, by_path.st_ino) != (current.device, current.inode):
            return "rotated"
        return None

    def _open(self) -> _OpenFile | None:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            self._record_once("missing", f"{self.path}: no such file (waiting for it)")
            return None
        except IsADirectoryError:
            self._record_once("not-a-file", f"{self.path}: is a directory")
            return None
        except OSError as exc:
            self._record_once("unreadable", f"{self.path}: {exc.strerror}")
            return None
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # a FIFO or device: `-` or `scan` read those
            os.close(fd)
            self._record_once("not-a-file", f"{self.path}: not a regular file")
            return None
        self._reported.clear()
        first, self._first_open = self._first_open, False
        assembler = LineAssembler(partial_timeout=self.partial_timeout)
        if first:
            assembler = self._resume(fd) or assembler
        current = _OpenFile(self.path, fd, assembler)
        os.lseek(fd, current.read_offset, os.SEEK_SET)
        self.opened.set()
        return current

    def _load_checkpoint(self) -> FilePosition | None:
        if self.checkpoints is None:
            return None
        try:
            return self.checkpoints.load_position(self._key)
        except CheckpointError as exc:
            self.errors.record("checkpoint", str(exc))
            return None

    def _catch_up_rotated(self) -> Iterator[Chunk]:
        """If the checkpointed file was rotated away while we were down, read the rest of it (found
        by inode in the same directory) before the new file, so the rotation skips nothing."""
        saved = self._saved
        if saved is None:
            return
        try:
            now = os.stat(self.path)
            if (now.st_dev, now.st_ino) == (saved.device, saved.inode):
                return
        except OSError:
            pass
        rotated = _find_by_inode(os.path.dirname(os.path.abspath(self.path)), saved.device, saved.inode)
        if rotated is None:
            return
        try:
            fd = os.open(rotated, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            return
        try:
            with os.fdopen(os.dup(fd), "rb") as handle:
                if not is_same_file(saved, handle):
                    return
            resume = LineAssembler(offset=saved.offset, line=saved.line, partial_timeout=self.partial_timeout)
            old = _OpenFile(rotated, fd, resume)
            old.head_len, old.head_sha256 = saved.head_len, saved.head_sha256
            os.lseek(fd, saved.offset, os.SEEK_SET)
            self.rotations += 1
            yield from self._drain(old)
        finally:
            os.close(fd)

    def _record_once(self, kind: str, message: str) -> None:
        """Count a problem once per episode, not once per retry."""
        if kind not in self._reported:
            self._reported.add(kind)
            self.errors.record(kind, message)

    def _resume(self, fd: int) -> LineAssembler | None:
        """Where to start in a file opened for the first time: a valid checkpoint, else the end
        (``from_end``), else the beginning."""
        position = self._saved
        if position is not None:
            with os.fdopen(os.dup(fd), "rb") as handle:
                if is_same_file(position, handle):
                    with self._lock:
                        self._acked = position
                    return LineAssembler(
                        offset=position.offset, line=position.line, partial_timeout=self.partial_timeout
                    )
        if self.from_end:
            offset, lines = _count_lines(fd)
            return LineAssembler(offset=offset, line=lines + 1, partial_timeout=self.partial_timeout)
        return None


def _find_by_inode(directory: str, device: int, inode: int) -> str | None:
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                info = entry.stat(follow_symlinks=False)
                if (info.st_dev, info.st_ino) == (device, inode) and entry.is_file(follow_symlinks=False):
                    return entry.path
    except OSError:
        return None
    return None


def _count_lines(fd: int) -> tuple[int, int]:
    """Size and number of newlines of an open file, read in bounded blocks."""
    offset = 0
    lines = 0
    while block := os.pread(fd, 1 << 20, offset):
        lines += block.count(b"\n")
        offset += len(block)
    return offset, lines
