"""Files and directory trees as chunks, read in bounded pieces so memory does not grow with file size.

Walking never follows directory symlinks (no loops); file symlinks are read. Only regular files are
read: FIFOs, sockets and devices are skipped (reading one could block forever or never end). Files
whose first 8 KiB hold a NUL byte are skipped as binary and counted. Unreadable, vanished or looping
paths are recorded in ``errors`` and the walk goes on. A walk may be given a ``PathSkip`` per named
path (``.gitignore``, ``--exclude``): what it leaves out is not read, and counted by reason.

A file read whole in one chunk is handed out ``whole``, many to a batch (up to ``BATCH_FILES`` files or
``BATCH_BYTES``), so a tree of small files is matched in a few passes instead of one stream per file:
per-file Python work, not matching, is what a tree of small files costs.
"""

from __future__ import annotations

import codecs
import os
import stat
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from jitsec.connectors.sources.strings import StringsExtractor

from jitsec.kernel.ports import BatchReader, SourceErrors
from jitsec.kernel.records import Chunk, FileOrigin

CHUNK_SIZE = 1 << 20
BINARY_SNIFF = 8192
BinaryMode = Literal["skip", "strings"]  # what a binary-looking file gets: skipped, or its printable runs
BATCH_FILES = 256  # whole files handed out together
BATCH_BYTES = 4 << 20


@dataclass(frozen=True, slots=True)
class FileEntry:
    path: Path | str  # a str inside walked trees: a Path per file costs more than reading a small one
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
    # told the size of every planned file the sources pass over unread (a progress bar's total
    # counts it: without this the bar stops short by what was skipped)
    passed_over: Callable[[int], None] | None = None
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

    yield from _walk_tree(os.fspath(root), errors, report, skip)


def _walk_tree(root: str, errors: SourceErrors, report: WalkReport,
               skip: PathSkip | None = None) -> Iterator[FileEntry]:
    """The files under ``root`` in ``os.walk`` order (a directory's files by name, then its
    subdirectories by name), without following directory symlinks; one ``scandir`` per directory.
    What ``skip`` leaves out (by the path relative to ``root``) is not walked or read, and counted."""
    pending = [(root, "")]
    while pending:
        directory, prefix = pending.pop()
        try:
            with os.scandir(directory) as listing:
                found = sorted(listing, key=lambda item: item.name)
        except OSError as error:
            errors.record("unreadable", f"{error.filename or directory}: {error.strerror or error}")
            continue
        subdirectories = []
        for item in found:
            try:
                is_directory = item.is_dir()
            except OSError:
                is_directory = False
            if is_directory:
                if not item.is_symlink() and not _skipped(skip, prefix + item.name, True, report):
                    subdirectories.append((item.path, prefix + item.name + "/"))
                continue
            if _skipped(skip, prefix + item.name, False, report):
                continue
            try:
                info = item.stat()
            except OSError as error:
                errors.record("unreadable", f"{item.path}: {error.strerror or error}")
                continue
            if stat.S_ISREG(info.st_mode):
                yield FileEntry(item.path, info.st_size)
            else:
                report.count("special")
        pending.extend(reversed(subdirectories))


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


def _as_is(raw: bytes, final: bool) -> bytes:
    return raw


class PathFeed:
    """A thread-safe queue of files shared by several ``FilesSource``s (``--jobs``).

    Sources that take ``large_only`` get files of more than ``CHUNK_SIZE`` only (matching them releases
    the GIL, so threads help); the small files they step over wait for the others. Threads cannot help
    with small files, whose cost is Python work under the GIL: several threads reading them slowed a
    scan down (each file's read released the GIL and waited to get it back)."""

    def __init__(self, entries: Iterable[FileEntry]) -> None:
        self._iterator = iter(entries)
        self._stepped_over: deque[FileEntry] = deque()
        self._lock = threading.Lock()

    def next(self, *, large_only: bool = False) -> FileEntry | None:
        with self._lock:
            if not large_only:
                return self._stepped_over.popleft() if self._stepped_over else next(self._iterator, None)
            for entry in self._iterator:
                if entry.size > CHUNK_SIZE:
                    return entry
                self._stepped_over.append(entry)
            return None


class FilesSource(BatchReader):
    """Chunks of every file taken from ``feed``; one origin at a time, in order within a file. Files
    that fit in one chunk come ``whole``, in batches; larger ones in chunks, a batch each."""

    def __init__(
        self,
        feed: PathFeed | Sequence[Path],
        *,
        chunk_size: int = CHUNK_SIZE,
        skip_binary: bool = True,
        binary: BinaryMode = "skip",
        report: WalkReport | None = None,
        clock: Callable[[], float] = time.monotonic,
        skip: PathSkip | None = None,
        large_only: bool = False,
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
        self._binary = binary
        self._clock = clock
        self._large_only = large_only  # a helper job of --jobs: files of several chunks only
        self._closed = False
        self.files = 0

    def batches(self) -> Iterator[Sequence[Chunk]]:
        pending: list[Chunk] = []
        size = 0
        while not self._closed:
            entry = self._feed.next(large_only=self._large_only)
            if entry is None:
                break
            for chunk in self._read(entry.path, stream=entry.stream):
                if not chunk.whole:
                    if pending:  # the whole files before it go first: in order, one origin at a time
                        yield pending
                        pending, size = [], 0
                    yield (chunk,)
                    continue
                pending.append(chunk)
                size += len(chunk.data)
                if len(pending) >= BATCH_FILES or size >= BATCH_BYTES:
                    yield pending
                    pending, size = [], 0
        if pending:
            yield pending

    def _read(self, path: Path | str, *, stream: bool = False) -> Iterator[Chunk]:
        origin = FileOrigin(str(path))
        try:
            handle = open(path, "rb")  # noqa: SIM115 - closed in finally; chunks are yielded in between
        except OSError as error:
            self.errors.record("unreadable", f"{path}: {error.strerror or error}")
            return
        try:
            status = os.fstat(handle.fileno())
            mode = status.st_mode
            if not (stat.S_ISREG(mode) or (stream and stat.S_ISFIFO(mode))):  # replaced since the walk
                self.report.count("special")
                return
            offset, line, first = 0, 1, True
            text: Callable[[bytes, bool], bytes] = _as_is
            while not self._closed:
                try:
                    raw = handle.read(self._chunk_size)
                    # a first read short of a chunk may be the whole file: one more read tells
                    short = first and 0 < len(raw) < self._chunk_size
                    rest = handle.read(self._chunk_size) if short else None
                except OSError as error:
                    self.errors.record("unreadable", f"{path}: {error.strerror or error}")
                    return
                whole = rest == b""
                if rest:
                    raw += rest
                if first and raw:
                    first = False
                    converter = self._text_converter(raw[:BINARY_SNIFF])
                    if converter is None:
                        self.report.count("binary")
                        if self.report.passed_over is not None:
                            self.report.passed_over(status.st_size)
                        return
                    text = converter
                    self.files += 1
                final = whole or not raw
                data = text(raw, final)
                if data:
                    yield Chunk(data=data, origin=origin, offset=offset, line=line, read_at=self._clock(),
                                whole=whole)
                    offset += len(data)
                    line += data.count(b"\n")
                if final:
                    break
        finally:
            handle.close()

    def _text_converter(self, head: bytes) -> Callable[[bytes, bool], bytes] | None:
        """How a file's bytes become the text scanned: as they are; UTF-16/32 decoded to UTF-8 (offsets
        count that text, lines are the file's); for other binary files, their printable runs one per
        line with ``binary="strings"`` (offsets and lines count those), else None: skipped."""
        if not self._skip_binary or b"\0" not in head:
            return _as_is
        encoding = wide_text_encoding(head)
        if encoding is not None:
            decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
            return lambda raw, final: decoder.decode(raw, final=final).encode("utf-8")
        if self._binary == "strings":
            extractor = StringsExtractor()
            return lambda raw, final: extractor.feed(raw, final=final)
        return None

    def acknowledge(self, chunk: Chunk) -> None:
        """Files have no position to commit."""

    def close(self) -> None:
        self._closed = True
