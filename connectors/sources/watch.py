"""Follow a directory tree with watchdog: new files scanned whole, growing files from where reading
stopped, rewritten files from their start.

watchdog's observer thread only marks paths as dirty; the reading happens in ``chunks`` once a path
has been quiet for ``debounce`` seconds (or has been dirty for ``max_delay``, so a file written
continuously is still read), so a burst of writes costs one read. Files are opened per read and not
held, so a large tree does not exhaust file descriptors. A file renamed within the tree keeps its
position (log rotation inside a watched directory does not rescan ``app.log.1``).

Binary files (a NUL byte in their first 8000 bytes, and not UTF-16/32 text, which is decoded) are
skipped and counted in ``errors``, as are files that vanish or cannot be read; none of it stops the
stream. A ``skip`` (``--exclude``) leaves out paths below the root: excluded folders are not walked,
excluded files are never read.
"""

from __future__ import annotations

import hashlib
import os
import stat
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from jitsec.connectors.checkpoints import (
    HEAD_BYTES,
    CheckpointError,
    CheckpointStore,
    FilePosition,
    is_same_file,
)
from jitsec.connectors.sources.files import PathSkip
from jitsec.connectors.sources.linebuffer import LineAssembler, Piece
from jitsec.connectors.sources.wide_text import WideText
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from jitsec.kernel.ports import ChunkReader, SourceErrors
from jitsec.kernel.records import Chunk, FileOrigin

BINARY_PROBE = 8000
DEFAULT_CHUNK_SIZE = 256 * 1024


@dataclass(slots=True)
class _FileState:
    device: int
    inode: int
    assembler: LineAssembler
    read_offset: int
    binary: bool = False
    checked: bool = False  # its first bytes were looked at (binary, wide text or plain)
    wide: WideText | None = None
    head_len: int = 0
    head_sha256: str = ""


class _DirtyPaths(FileSystemEventHandler):
    """Runs on watchdog's thread: records which paths changed and when, nothing else."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.lock = threading.Lock()
        self.dirty: dict[str, tuple[float, float]] = {}  # path -> (first event, last event)
        self.moves: deque[tuple[str, str]] = deque()
        self.deleted: deque[str] = deque()
        self.new_dirs: deque[str] = deque()

    def mark(self, path: str) -> None:
        now = self.clock()
        with self.lock:
            first, _ = self.dirty.get(path, (now, now))
            self.dirty[path] = (first, now)

    def on_any_event(self, event: FileSystemEvent) -> None:
        source = os.fsdecode(event.src_path)
        if event.event_type == "moved":
            destination = os.fsdecode(event.dest_path)
            with self.lock:
                self.moves.append((source, destination))
            if event.is_directory:
                with self.lock:
                    self.new_dirs.append(destination)
            else:
                self.mark(destination)
        elif event.event_type == "deleted":
            with self.lock:
                self.deleted.append(source)
        elif event.is_directory:
            if event.event_type == "created":
                with self.lock:
                    self.new_dirs.append(source)
        elif event.event_type in ("created", "modified", "closed"):
            self.mark(source)


class DirectoryWatchSource(ChunkReader):
    """Chunks of the files under ``root`` as they appear and grow, until ``close``."""

    def __init__(
        self,
        root: Path | str,
        *,
        checkpoints: CheckpointStore | None = None,
        from_end: bool = False,
        debounce: float = 0.05,
        max_delay: float = 0.5,
        poll_interval: float = 0.02,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        partial_timeout: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
        skip: PathSkip | None = None,
    ) -> None:
        """``skip(path relative to root, is_folder)`` says what to leave out (None: nothing)."""
        self.root = Path(root)
        self.skip = skip
        if not self.root.is_dir():
            raise NotADirectoryError(f"{root} is not a directory")
        self.checkpoints = checkpoints
        self.from_end = from_end
        self.debounce = debounce
        self.max_delay = max_delay
        self.poll_interval = poll_interval
        self.chunk_size = chunk_size
        self.partial_timeout = partial_timeout
        self.clock = clock
        self.errors = SourceErrors()
        self._files: dict[str, _FileState] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._unacked: deque[tuple[Chunk, FilePosition]] = deque()
        self._acked: dict[str, FilePosition] = {}
        self._dirty_acked: set[str] = set()
        self._starting = False

    # -- Source protocol -------------------------------------------------------------------------

    def chunks(self) -> Iterator[Chunk]:
        handler = _DirtyPaths(self.clock)
        observer = Observer()
        observer.schedule(handler, str(self.root), recursive=True)
        observer.start()  # before the initial walk, so nothing written meanwhile is missed
        try:
            self._starting = True  # ``from_end`` applies to files already there, not to new ones
            for path in _walk_files(self.root, self._skipped):
                yield from self._read(path, first_sight=True)
            self._starting = False
            while not self._stop.is_set():
                self._apply_structure_changes(handler)
                ready = [path for path in self._ready_paths(handler) if not self._skipped(path)]
                for path in ready:
                    yield from self._read(path, first_sight=path not in self._files)
                yield from self._flush_overdue()
                if not ready:
                    self._stop.wait(self.poll_interval)
        finally:
            observer.stop()
            observer.join(timeout=5)

    def acknowledge(self, chunk: Chunk) -> None:
        """``chunk`` and every chunk before it are handled; a chunk not pending (acknowledged already,
        or not ours) changes nothing."""
        with self._lock:
            if not any(pending is chunk for pending, _ in self._unacked):
                return
            while self._unacked:
                pending, position = self._unacked.popleft()
                self._acked[position.path] = position
                self._dirty_acked.add(position.path)
                if pending is chunk:
                    break
        self._save_checkpoints(durable=False)

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            self._dirty_acked.update(self._acked)
        self._save_checkpoints(durable=True)

    def lag(self) -> int:
        """Bytes in known files not read yet (the daemon's consumer-lag metric); files not seen yet
        are not counted."""
        total = 0
        for path, state in list(self._files.items()):
            try:
                info = os.stat(path)
            except OSError:
                continue
            if (info.st_dev, info.st_ino) == (state.device, state.inode) and not state.binary:
                total += max(0, info.st_size - state.read_offset)
        return total

    # -- internals ---------------------------------------------------------------------------------

    def _key(self, path: str) -> str:
        return f"watch:{os.path.abspath(path)}"

    def _save_checkpoints(self, *, durable: bool) -> None:
        if self.checkpoints is None:
            return
        with self._lock:
            todo = [self._acked[path] for path in self._dirty_acked if path in self._acked]
            self._dirty_acked.clear()
        for position in todo:
            try:
                self.checkpoints.save_position(self._key(position.path), position, durable=durable)
            except CheckpointError as exc:
                self.errors.record("checkpoint", str(exc))

    def _apply_structure_changes(self, handler: _DirtyPaths) -> None:
        with handler.lock:
            moves = list(handler.moves)
            deleted = list(handler.deleted)
            new_dirs = list(handler.new_dirs)
            handler.moves.clear()
            handler.deleted.clear()
            handler.new_dirs.clear()
        for source, destination in moves:
            state = self._files.pop(source, None)
            if state is not None and _is_within(destination, self.root):
                self._files[destination] = state
        for path in deleted:
            self._files.pop(path, None)
        for directory in new_dirs:
            for path in _walk_files(Path(directory), self._skipped):
                handler.mark(path)

    def _ready_paths(self, handler: _DirtyPaths) -> list[str]:
        now = self.clock()
        with handler.lock:
            ready = [
                path
                for path, (first, last) in handler.dirty.items()
                if now - last >= self.debounce or now - first >= self.max_delay
            ]
            for path in ready:
                del handler.dirty[path]
        return ready

    def _flush_overdue(self) -> Iterator[Chunk]:
        now = self.clock()
        for path, state in list(self._files.items()):
            piece = state.assembler.flush(now)
            if piece is not None:
                yield self._chunk(path, state, piece)

    def _skipped(self, path: str, is_dir: bool = False) -> bool:
        """Whether ``skip`` leaves out ``path`` or a folder above it below the root (a file written
        in an excluded folder is reported by its own path)."""
        if self.skip is None:
            return False
        relative = Path(os.path.relpath(path, self.root)).as_posix()
        if relative == ".." or relative.startswith("../"):
            return False
        parts = relative.split("/")
        return any(self.skip("/".join(parts[:depth]), depth < len(parts) or is_dir) is not None
                   for depth in range(1, len(parts) + 1))

    def _read(self, path: str, *, first_sight: bool) -> Iterator[Chunk]:
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0))
        except FileNotFoundError:
            self._files.pop(path, None)
            return
        except IsADirectoryError:
            return
        except OSError as exc:
            self.errors.record("unreadable", f"{path}: {exc.strerror}")
            return
        try:
            info = os.fstat(fd)
            if not _is_regular(info.st_mode):
                return
            state = self._state_for(path, fd, info, first_sight=first_sight)
            if not state.checked:
                self._check_head(path, fd, state)
            if state.binary:
                return
            os.lseek(fd, state.read_offset, os.SEEK_SET)
            while not self._stop.is_set():
                data = os.read(fd, self.chunk_size)
                if not data:
                    break
                state.read_offset += len(data)
                piece = state.assembler.feed(data, self.clock())
                if piece is not None:
                    yield self._chunk(path, state, piece)
        except OSError as exc:
            self.errors.record("read-error", f"{path}: {exc.strerror}")
        finally:
            os.close(fd)

    def _check_head(self, path: str, fd: int, state: _FileState) -> None:
        """Binary (skipped, counted), UTF-16/32 text (decoded) or plain text, by the first bytes."""
        head = os.pread(fd, BINARY_PROBE, 0)
        if not head:
            return  # empty so far: look again when it has grown
        state.checked = True
        if b"\0" in head:
            state.wide = WideText.of(head)
            if state.wide is None:
                state.binary = True
                self.errors.record("binary-skipped", path)

    def _state_for(self, path: str, fd: int, info: os.stat_result, *, first_sight: bool) -> _FileState:
        """The reading state of ``path``, new or reset when the file was replaced or truncated."""
        state = self._files.get(path)
        if state is not None:
            replaced = (info.st_dev, info.st_ino) != (state.device, state.inode)
            rewritten = state.head_len > 0 and (
                hashlib.sha256(os.pread(fd, state.head_len, 0)).hexdigest() != state.head_sha256
            )
            if not replaced and not rewritten and info.st_size >= state.read_offset:
                return state
        state = _FileState(info.st_dev, info.st_ino, self._new_assembler(), 0)
        if first_sight:
            self._resume(path, fd, state)
        self._files[path] = state
        return state

    def _new_assembler(self, offset: int = 0, line: int = 1) -> LineAssembler:
        return LineAssembler(offset=offset, line=line, partial_timeout=self.partial_timeout)

    def _resume(self, path: str, fd: int, state: _FileState) -> None:
        if self.checkpoints is not None:
            try:
                position = self.checkpoints.load_position(self._key(path))
            except CheckpointError as exc:
                self.errors.record("checkpoint", str(exc))
                position = None
            if position is not None:
                with os.fdopen(os.dup(fd), "rb") as handle:
                    if is_same_file(position, handle):
                        state.assembler = self._new_assembler(position.offset, position.line)
                        state.read_offset = position.offset
                        return
        if self.from_end and self._starting:
            lines = 0
            offset = 0
            while block := os.pread(fd, 1 << 20, offset):
                lines += block.count(b"\n")
                offset += len(block)
            state.assembler = self._new_assembler(offset, lines + 1)
            state.read_offset = offset

    def _chunk(self, path: str, state: _FileState, piece: Piece) -> Chunk:
        data, offset, line = (piece.data, piece.offset, piece.line) if state.wide is None else (
            state.wide.convert(piece.data, piece.offset, piece.line))
        chunk = Chunk(data, FileOrigin(path), offset, line, piece.read_at)
        end = piece.offset + len(piece.data)
        if state.head_len < HEAD_BYTES and end > state.head_len:
            state.head_len = min(HEAD_BYTES, end)
            state.head_sha256 = _head_hash(path, state.head_len)
        position = FilePosition(
            path=path,
            device=state.device,
            inode=state.inode,
            offset=end,
            line=piece.line + piece.data.count(b"\n"),
            head_len=state.head_len,
            head_sha256=state.head_sha256,
        )
        with self._lock:
            self._unacked.append((chunk, position))
        return chunk


def _head_hash(path: str, length: int) -> str:
    try:
        with open(path, "rb") as handle:
            return hashlib.sha256(handle.read(length)).hexdigest()
    except OSError:
        return ""


def _is_regular(mode: int) -> bool:
    return stat.S_ISREG(mode)


def _is_within(path: str, root: Path) -> bool:
    try:
        Path(path).resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


def _walk_files(root: Path, skipped: Callable[[str, bool], bool]) -> Iterator[str]:
    """Regular files under ``root`` that ``skipped`` keeps, without following symlinked directories
    (no loops)."""
    for directory, folders, names in os.walk(root, followlinks=False):
        folders[:] = [name for name in folders if not skipped(os.path.join(directory, name), True)]
        for name in names:
            path = os.path.join(directory, name)
            if not skipped(path, False):
                yield path

