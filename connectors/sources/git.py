"""Every blob in a repository's history, each scanned once, located by the commit that introduced it.

Two ``git`` processes stream side by side, so memory stays bounded whatever the history's size:

- ``git log --all --topo-order --reverse --raw -z`` lists, oldest first, each commit (its id, author,
  author date and subject, from one format string) and the blobs it added or modified (merges
  against their first parent, so evil merges are covered). The first commit to show a blob is the
  one that introduced it; later appearances are skipped by object id.
- ``git cat-file --batch`` hands out each new blob's content, which is cut into line-aligned chunks
  with a ``GitOrigin`` (commit, path, authorship, repository root) so that findings say who wrote
  what, where and when.

Binary blobs (a NUL byte in the first 8000 bytes, git's own test) and submodule entries are skipped
and counted in ``stats``. Only the set of seen object ids grows with the history (20 bytes each).

Followed (``follow=True``, what ``jitsec watch`` opens), the source then polls the refs every
``poll_interval`` seconds (one ``git show-ref --head``, compared with the previous listing) and scans
only what a change made reachable: ``git log <new tips> ^<scanned tips>``. Force-pushes scan the new
commits only (the old tip stays among the scanned ones), deleted refs scan nothing, new branches scan
their own commits. The scanned tips are kept as a minimal set (``git merge-base --independent``), so a
fast-forward replaces the old tip instead of adding to it; the seen-blob set lives for one round only,
so a long-running watch holds no per-blob state between rounds. Once the last chunk of a round is
acknowledged (so everything found up to it was handled), the round's tips are the checkpoint, and a
restarted watch scans only the commits added since. Each round ends with an empty chunk of its own
origin, so that the pipeline finishes the stream scan of the round's last blob at once.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
from collections import deque
from collections.abc import Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from jitsec.connectors.sources.linebuffer import LineAssembler

from jitsec.kernel.ports import ChunkReader, SourceErrors
from jitsec.kernel.records import Chunk, GitOrigin

if TYPE_CHECKING:  # a checkpointed (followed) history imports it where it loads and saves
    from jitsec.connectors.checkpoints import CheckpointStore

DEFAULT_CHUNK_SIZE = 256 * 1024
DEFAULT_POLL_INTERVAL = 2.0  # seconds between two looks at the refs of a followed repository
GIT_POLL_ENV = "JITSEC_GIT_POLL_INTERVAL"  # overrides it for `jitsec watch git:PATH`
BINARY_PROBE = 8000
_OBJECT_ID = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")  # SHA-1 or SHA-256
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
    ref_changes: int = 0  # followed: polls that found the refs changed
    rounds: int = 0  # followed: scans of newly reachable commits (the first one is the history)


LOG_FORMAT = "%H%x00%an%x00%ae%x00%aI%x00%s"
"""The commit fields every git reader asks for in its one ``git log``: id, author name and email, author
date (strict ISO 8601) and subject, NUL-separated (none of them can hold a NUL)."""
LOG_FIELDS = 5


@dataclass(frozen=True, slots=True)
class CommitInfo:
    """One commit as ``LOG_FORMAT`` describes it."""

    sha: str
    author_name: str = ""
    author_email: str = ""
    author_date: str = ""
    subject: str = ""

    @classmethod
    def parse(cls, fields: Sequence[bytes]) -> CommitInfo:
        """From the ``LOG_FIELDS`` fields of ``LOG_FORMAT`` (missing ones left empty)."""
        return cls(*b"\0".join(fields[:LOG_FIELDS]).decode("utf-8", "replace").split("\0"))

    def origin(self, path: str, repository: str = "") -> GitOrigin:
        return GitOrigin(self.sha, path, self.author_name, self.author_email, self.author_date,
                         self.subject, repository)


@dataclass(frozen=True, slots=True)
class BlobChange:
    """One blob a commit added or modified; ``path`` and ``blob`` are empty for the entry that marks
    the start of a commit."""

    commit: CommitInfo
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


def repository_root(repo: Path) -> str:
    """The absolute top of ``repo``'s work tree, which paths in git's output are relative to; the
    resolved ``repo`` itself for a bare repository."""
    result = subprocess.run(
        [git_executable(), "-C", str(repo), "rev-parse", "--show-toplevel"], capture_output=True, check=False
    )
    top = result.stdout.decode("utf-8", "surrogateescape").strip()
    return top if result.returncode == 0 and top else str(repo.resolve())


def blob_changes(
    repo: Path,
    revisions: Sequence[str] = ("--all",),
    *,
    stdin_revisions: Sequence[str] | None = None,
    check: bool = False,
) -> Iterator[BlobChange]:
    """Added or modified blobs, oldest commit first, as the log streams them.

    ``stdin_revisions`` (``<id>`` and ``^<id>`` lines) are handed to ``git log --stdin``, so that any
    number of ref tips fits; ``check`` raises ``GitError`` when git fails instead of ending quietly."""
    command = [
        git_executable(), "-C", str(repo), "-c", "core.quotePath=false", "log", *revisions,
        *(["--stdin"] if stdin_revisions is not None else []),
        "--topo-order", "--reverse", "--raw", "--no-abbrev", "--no-renames",
        "--diff-merges=first-parent", f"--format=tformat:%x00{LOG_FORMAT}", "-z", "--",
    ]  # fmt: skip
    with subprocess.Popen(
        command,
        stdin=subprocess.PIPE if stdin_revisions is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE if check else subprocess.DEVNULL,
    ) as process:
        assert process.stdout is not None
        try:
            if process.stdin is not None:
                # git reads all of its input before it writes anything, so this cannot deadlock.
                lines = "".join(f"{revision}\n" for revision in stdin_revisions or ())
                try:
                    process.stdin.write(lines.encode())
                    process.stdin.close()
                except BrokenPipeError:
                    pass  # git gave up early; ``check`` reports why
            yield from _parse_raw_log(_nul_tokens(process.stdout))
            if check and process.wait() != 0:
                assert process.stderr is not None
                reason = process.stderr.read().decode(errors="replace").strip().splitlines()
                raise GitError(f"git log failed in {repo}: {reason[-1] if reason else process.returncode}")
        finally:
            process.kill()


def _git(repo: Path, *arguments: str, stdin: bytes | None = None, ok: Iterable[int] = (0,)) -> bytes:
    """A short git command's output; ``GitError`` naming git's complaint when it fails."""
    result = subprocess.run(
        [git_executable(), "-C", str(repo), *arguments], input=stdin, capture_output=True, check=False
    )
    if result.returncode not in tuple(ok):
        reason = result.stderr.decode(errors="replace").strip().splitlines()
        raise GitError(f"git {arguments[0]} failed in {repo}: {reason[-1] if reason else result.returncode}")
    return result.stdout


def ref_listing(repo: Path) -> bytes:
    """HEAD and every ref with the object it names (``git show-ref --head``): compared between two
    polls to see whether anything moved. Empty for a repository without commits."""
    return _git(repo, "show-ref", "--head", ok=(0, 1))


def commits_of(repo: Path, names: Iterable[str]) -> frozenset[str]:
    """The commits that ``names`` (object ids) are or point to, annotated tags peeled; names that do
    not exist (any more) or are not commits (a tag of a tree) are left out. One ``git cat-file``."""
    wanted = sorted(set(names))
    if not wanted:
        return frozenset()
    questions = "".join(f"{name}^{{commit}}\n" for name in wanted).encode()
    output = _git(repo, "cat-file", "--batch-check", stdin=questions)
    found = set()
    for line in output.decode(errors="replace").splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[1] == "commit":
            found.add(fields[0])
    return frozenset(found)


def independent_commits(repo: Path, commits: Iterable[str]) -> frozenset[str]:
    """The fewest of ``commits`` that reach all the others (``git merge-base --independent``)."""
    wanted = sorted(set(commits))
    if len(wanted) < 2:
        return frozenset(wanted)
    return frozenset(_git(repo, "merge-base", "--independent", *wanted).decode().split())


def _nul_tokens(stream: IO[bytes]) -> Iterator[bytes]:
    rest = b""
    while block := stream.read(1 << 16):
        parts = (rest + block).split(b"\0")
        rest = parts.pop()
        yield from parts
    if rest:
        yield rest


def _parse_raw_log(tokens: Iterator[bytes]) -> Iterator[BlobChange]:
    """Tokens of ``git log --raw -z --format=%x00<LOG_FORMAT>``: a commit id followed by the other
    fields of its ``LOG_FORMAT`` (read by position: a name may start with anything), and
    ``:modes ids status`` headers each followed by a path token."""
    commit = CommitInfo("")
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
            commit = CommitInfo.parse((token, next(tokens, b""), next(tokens, b""), next(tokens, b""),
                                       next(tokens, b"")))  # LOG_FIELDS in all
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


class GitHistorySource(ChunkReader):
    """Chunks of every blob reachable from ``revisions`` (all refs by default), each blob once.

    With ``follow`` the source keeps watching all refs (``revisions`` then does not apply) and scans
    each commit they come to reach, until ``close``; with ``checkpoints`` a restart resumes after the
    last round that was fully acknowledged.
    """

    def __init__(
        self,
        repo: Path | str,
        *,
        revisions: Sequence[str] = ("--all",),
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        follow: bool = False,
        checkpoints: CheckpointStore | None = None,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
    ) -> None:
        if poll_interval <= 0 or chunk_size < 1:
            raise ValueError("poll_interval must be > 0 and chunk_size >= 1")
        self.repo = Path(repo)
        self.revisions = tuple(revisions)
        self.chunk_size = chunk_size
        self.follow = follow
        self.checkpoints = checkpoints
        self.poll_interval = poll_interval
        self.errors = SourceErrors()
        self.stats = GitStats()
        self._stop = threading.Event()
        self._key = f"git:{self.repo.resolve()}"
        self._root = ""  # the work tree's top (the repository itself when bare), once checked
        self._lock = threading.Lock()
        self._save_lock = threading.Lock()
        # Followed only: chunks yielded and not yet acknowledged, with their sequence numbers; rounds
        # (sequence number of their last chunk, tips) waiting for that chunk's acknowledgement.
        self._yielded = 0
        self._acked_through = 0
        self._unacked: deque[tuple[Chunk, int]] = deque()
        self._rounds: deque[tuple[int, frozenset[str]]] = deque()
        self._acked: frozenset[str] | None = None  # tips of the last fully acknowledged round
        self._last_problem = ""

    # -- Source protocol -------------------------------------------------------------------------

    def chunks(self) -> Iterator[Chunk]:
        check_repository(self.repo)
        self._root = repository_root(self.repo)
        if not self.follow:
            yield from self._scan(blob_changes(self.repo, self.revisions), set())
            return
        yield from self._follow()

    def acknowledge(self, chunk: Chunk) -> None:
        """Once a round's last chunk is acknowledged (and so all before it), its tips are saved."""
        with self._lock:
            if not any(pending is chunk for pending, _ in self._unacked):
                return  # not followed, or not ours
            while self._unacked:
                pending, sequence = self._unacked.popleft()
                if pending is chunk:
                    break
            self._acked_through = sequence
            completed = self._completed_rounds()
        if completed:
            self._save(durable=False)

    def close(self) -> None:
        self._stop.set()
        self._save(durable=True)

    # -- following -------------------------------------------------------------------------------

    def _follow(self) -> Iterator[Chunk]:
        saved = self._load_checkpoint()
        scanned: frozenset[str] | None = None  # known once git answers (saved tips still there)
        listing: bytes | None = None
        while not self._stop.is_set():
            try:
                if scanned is None:
                    scanned = commits_of(self.repo, saved)
                current = ref_listing(self.repo)
                if current != listing:
                    self.stats.ref_changes += 1
                    tips = commits_of(self.repo, _listed_ids(current))
                    if tips - scanned:
                        done = yield from self._round(tips - scanned, scanned)
                        if done is None:
                            return  # closed in the middle: the next run repeats this round
                        scanned = done
                    else:  # a deleted ref or one moved back: nothing new to scan
                        scanned = independent_commits(self.repo, tips | scanned)
                    listing = current
                self._last_problem = ""  # a poll that went through ends the episode
            except (GitError, OSError) as exc:
                self._problem(str(exc))  # retried at the next poll; nothing is marked scanned
            self._stop.wait(self.poll_interval)

    def _round(
        self, new: frozenset[str], scanned: frozenset[str]
    ) -> Generator[Chunk, None, frozenset[str] | None]:
        """The blobs of commits reachable from ``new`` and not from ``scanned``; the tips scanned
        so far, checkpointed once the round's last chunk is acknowledged; None when closed first."""
        self.stats.rounds += 1
        revisions = [*sorted(new), *(f"^{tip}" for tip in sorted(scanned))]
        changes = blob_changes(self.repo, (), stdin_revisions=revisions, check=True)
        completed = yield from self._scan(changes, set())
        if not completed:
            return None
        tips = independent_commits(self.repo, new | scanned)
        if tips == scanned:
            return tips  # the new tips were all behind scanned ones: nothing was yielded
        with self._lock:  # complete once the last chunk yielded so far is acknowledged
            self._rounds.append((self._yielded, tips))
            completed = self._completed_rounds()
        if completed:
            self._save(durable=False)
        # An empty chunk of another origin makes the pipeline finish the stream scan of the last blob
        # now (a last line without newline), rather than when the next round begins.
        yield self._tracked(Chunk(b"", GitOrigin("", "")))
        return tips

    def _tracked(self, chunk: Chunk) -> Chunk:
        with self._lock:
            self._yielded += 1
            self._unacked.append((chunk, self._yielded))
        return chunk

    def _completed_rounds(self) -> bool:
        """Whether a round completed (all its chunks acknowledged) and its tips became ``_acked``;
        called under the lock."""
        completed = False
        while self._rounds and self._rounds[0][0] <= self._acked_through:
            self._acked = self._rounds.popleft()[1]
            completed = True
        return completed

    def _load_checkpoint(self) -> list[str]:
        """The tips a previous run fully scanned and acknowledged; none without a checkpoint."""
        if self.checkpoints is None:
            return []
        from jitsec.connectors.checkpoints import CheckpointError  # noqa: PLC0415 - only with checkpoints

        try:
            saved = self.checkpoints.load(self._key)
        except CheckpointError as exc:
            self.errors.record("checkpoint", f"{exc}; scanning the whole history")
            return []
        if saved is None:
            return []
        tips = saved.get("tips")
        if not isinstance(tips, list) or not all(
                isinstance(t, str) and _OBJECT_ID.fullmatch(t) for t in tips):
            self.errors.record("checkpoint", f"malformed checkpoint for {self.repo}; scanning all history")
            return []
        return list(tips)

    def _save(self, *, durable: bool) -> None:
        """Write the latest acknowledged tips; serialised, so an older set never overwrites a newer
        one when ``close`` (another thread) and an acknowledgement save at once."""
        if self.checkpoints is None:
            return
        from jitsec.connectors.checkpoints import CheckpointError  # noqa: PLC0415 - only with checkpoints

        with self._save_lock:
            with self._lock:
                tips = self._acked
            if tips is None:
                return
            try:
                self.checkpoints.save(self._key, {"tips": sorted(tips)}, durable=durable)
            except CheckpointError as exc:
                self.errors.record("checkpoint", str(exc))

    def _problem(self, message: str) -> None:
        """Counted once per episode, not once per poll, while the same problem lasts."""
        if message != self._last_problem:
            self._last_problem = message
            self.errors.record("git", message)

    # -- scanning --------------------------------------------------------------------------------

    def _scan(self, changes: Iterator[BlobChange], seen: set[bytes]) -> Generator[Chunk, None, bool]:
        """Chunks of each blob of ``changes`` not in ``seen``; False when closed before the log ended."""
        reader = BlobReader(self.repo)
        try:
            for change in changes:
                if self._stop.is_set():
                    return False
                if not change.blob:
                    self.stats.commits += 1
                    continue
                key = bytes.fromhex(change.blob)
                if key in seen:
                    self.stats.blobs_repeated += 1
                    continue
                seen.add(key)
                for chunk in self._blob_chunks(reader, change):
                    yield self._tracked(chunk) if self.follow else chunk
        finally:
            reader.close()
            if isinstance(changes, Generator):
                changes.close()
        return True  # the log ended: complete, even if a stop came after its last blob

    def _blob_chunks(self, reader: BlobReader, change: BlobChange) -> Iterator[Chunk]:
        size = reader.open(change.blob)
        if size is None:
            self.errors.record("missing-object", f"{change.blob[:12]} ({change.path})")
            return
        origin = change.commit.origin(change.path, self._root)
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


def _listed_ids(listing: bytes) -> list[str]:
    """The object ids of a ``show-ref`` listing (``<id> <ref>`` lines)."""
    ids = []
    for line in listing.decode(errors="replace").splitlines():
        name = line.split(" ", 1)[0]
        if _OBJECT_ID.fullmatch(name):
            ids.append(name)
    return ids
