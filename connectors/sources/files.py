"""Files and directory trees as chunks, read in bounded pieces so memory does not grow with file size.

Walking never follows directory symlinks (no loops); file symlinks are read. Only regular files are
read: FIFOs, sockets and devices are skipped (reading one could block forever or never end). Files
whose first 8 KiB hold a NUL byte are skipped as binary and counted. Unreadable, vanished or looping
paths are recorded in ``errors`` and the walk goes on. A walk may be given a ``PathSkip`` per named
path (``.gitignore``, ``--exclude``): what it leaves out is not read, and counted by reason.
"""

from __future__ import annotations

import codecs
import os
import stat
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from jitsec.kernel.ports import ChunkReader, SourceErrors
from jitsec.kernel.records import Chunk, FileOrigin

CHUNK_SIZE = 1 << 20
BINARY_SNIFF = 8192


@dataclass(frozen=True, slots=True)
class FileEntry:
    path: Path
    size: int
    stream: bool = False  # a FIFO named explicitly (``jitsec scan <(cmd)``): read to its end, size unknown


SkipReason = Literal["ignored", "excluded"]
PathSkip = Callable[[str, bool], SkipReason | None]
"""Whether to leave out a path: given it relative to the walked folder (``/``-separated; for a file
named directly, the path as named) and whether it is a folder, the reason, or None to read it."""


@dataclass(slots=True)
class WalkReport:
    """What a walk stepped over, besides errors; shared by the sources of one scan (``--jobs``)."""

    special: int = 0  # FIFOs, sockets, devices
    binary: int = 0  # skipped because they look binary (counted by the sources)
    ignored: int = 0  # files and folders git ignores (a folder counts once)
    excluded: int = 0  # files and folders left out by --exclude or allowlisted paths
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, kind: Literal["special", "binary", "ignored", "excluded"]) -> None:
        with self._lock:
            setattr(self, kind, getattr(self, kind) + 1)


def walk(paths: Iterable[Path], errors: SourceErrors, report: WalkReport,
         skips: Callable[[Path], PathSkip | None] | None = None) -> Iterator[FileEntry]:
    """Regular files under ``paths`` (files given directly or found recursively), in a stable order;
    ``skips(path)`` gives what to leave out of each named path."""
    for named in paths:
        root = Path(named)
        yield from _walk_one(root, errors, report, skips(root) if skips is not None else None)


def _walk_one(root: Path, errors: SourceErrors, report: WalkReport,
              skip: PathSkip | None = None) -> Iterator[FileEntry]:
    """A path the user named is read whatever it is, or is an error: a FIFO (process substitution)
    is read as a stream; a device or socket is refused by name. Inside a directory, such files are
    skipped and counted."""
    try:
        mode = os.stat(root).st_mode
    except OSError as error:
        errors.record("unreadable", f"{root}: {error.strerror or error}")
        return
    if stat.S_ISFIFO(mode):
        yield FileEntry(root, 0, stream=True)
        return
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        errors.record("unreadable", f"{root}: not a regular file, directory or pipe (a device or socket)")
        return
    if stat.S_ISREG(mode):
        if skip is not None and (reason := skip(root.as_posix(), False)) is not None:
            report.count(reason)
            return
        entry = _regular(root, errors, report)
        if entry is not None:
            yield entry
        return

    def on_error(error: OSError) -> None:
        errors.record("unreadable", f"{error.filename}: {error.strerror or error}")

    for directory, dirnames, filenames in os.walk(root, onerror=on_error, followlinks=False):
        below = Path(directory).relative_to(root).as_posix()
        prefix = "" if below == "." else below + "/"
        dirnames[:] = [name for name in sorted(dirnames) if not _skipped(skip, prefix + name, True, report)]
        for name in sorted(filenames):
            if _skipped(skip, prefix + name, False, report):
                continue
            entry = _regular(Path(directory) / name, errors, report)
            if entry is not None:
                yield entry


def _skipped(skip: PathSkip | None, relative: str, is_dir: bool, report: WalkReport) -> bool:
    if skip is None:
        return False
    reason = skip(relative, is_dir)
    if reason is not None:
        report.count(reason)
    return reason is not None


def _regular(path: Path, errors: SourceErrors, report: WalkReport) -> FileEntry | None:
    try:
        info = os.stat(path)
    except OSError as error:
        errors.record("unreadable", f"{path}: {error.strerror or error}")
        return None
    if stat.S_ISREG(info.st_mode):
        return FileEntry(path, info.st_size)
    if not stat.S_ISDIR(info.st_mode):
        report.count("special")
    return None


_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def wide_text_encoding(head: bytes) -> str | None:
    """The codec of text stored in UTF-16 or UTF-32 (a Windows log, a PowerShell transcript), by its
    byte-order mark or, without one, by mostly-ASCII text with every other byte NUL; None for binary."""
    for bom, name in _BOMS:
        if head.startswith(bom):
            return name
    even, odd = head[0::2], head[1::2]
    if len(head) >= 64 and odd.count(0) > 0.9 * len(odd) and even.count(0) < 0.1 * len(even):
        return "utf-16-le"
    if len(head) >= 64 and even.count(0) > 0.9 * len(even) and odd.count(0) < 0.1 * len(odd):
        return "utf-16-be"
    return None


class PathFeed:
    """A thread-safe queue of files shared by several ``FilesSource``s (``--jobs``)."""

    def __init__(self, entries: Iterable[FileEntry]) -> None:
        self._iterator = iter(entries)
        self._lock = threading.Lock()

    def next(self) -> FileEntry | None:
        with self._lock:
            return next(self._iterator, None)


class FilesSource(ChunkReader):
    """Chunks of every file taken from ``feed``; one origin at a time, in order within a file."""

    def __init__(
        self,
        feed: PathFeed | Sequence[Path],
        *,
        chunk_size: int = CHUNK_SIZE,
        skip_binary: bool = True,
        report: WalkReport | None = None,
        clock: Callable[[], float] = time.monotonic,
        skip: PathSkip | None = None,
    ) -> None:
        """``skip`` leaves paths out of the walk of ``feed`` when it is a list of paths."""
        self.errors = SourceErrors()
        self.report = report if report is not None else WalkReport()
        if not isinstance(feed, PathFeed):
            skips = (lambda _root: skip) if skip is not None else None
            feed = PathFeed(walk(feed, self.errors, self.report, skips))
        self._feed = feed
        self._chunk_size = chunk_size
        self._skip_binary = skip_binary
        self._clock = clock
        self._closed = False
        self.files = 0

    def chunks(self) -> Iterator[Chunk]:
        while not self._closed:
            entry = self._feed.next()
            if entry is None:
                return
            yield from self._read(entry.path, stream=entry.stream)

    def _read(self, path: Path, *, stream: bool = False) -> Iterator[Chunk]:
        origin = FileOrigin(str(path))
        try:
            handle = open(path, "rb")  # noqa: SIM115 - closed in finally; chunks are yielded in between
        except OSError as error:
            self.errors.record("unreadable", f"{path}: {error.strerror or error}")
            return
        try:
            mode = os.fstat(handle.fileno()).st_mode
            if not (stat.S_ISREG(mode) or (stream and stat.S_ISFIFO(mode))):  # replaced since the walk
                self.report.count("special")
                return
            offset, line, first = 0, 1, True
            decoder: codecs.IncrementalDecoder | None = None
            while not self._closed:
                try:
                    raw = handle.read(self._chunk_size)
                except OSError as error:
                    self.errors.record("unreadable", f"{path}: {error.strerror or error}")
                    return
                if first and raw:
                    first = False
                    if self._skip_binary and b"\0" in raw[:BINARY_SNIFF]:
                        encoding = wide_text_encoding(raw[:BINARY_SNIFF])
                        if encoding is None:
                            self.report.count("binary")
                            return
                        decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
                    self.files += 1
                # UTF-16/32 text is scanned as UTF-8: offsets count that text, lines are the file's
                data = decoder.decode(raw, final=not raw).encode("utf-8") if decoder is not None else raw
                if data:
                    yield Chunk(data=data, origin=origin, offset=offset, line=line, read_at=self._clock())
                    offset += len(data)
                    line += data.count(b"\n")
                if not raw:
                    break
        finally:
            handle.close()

    def acknowledge(self, chunk: Chunk) -> None:
        """Files have no position to commit."""

    def close(self) -> None:
        self._closed = True
