"""Only the lines a change adds: what pre-commit and pre-push hooks scan.

``git diff --cached -U0`` (staged changes) or ``git log -p -U0`` (pushed commits) is parsed as it
streams; each run of consecutive added lines becomes one chunk whose ``line`` is the line number in
the new version of the file, so a finding points at the line the author just wrote. Removed and
context lines are never scanned: a hook should block what is being introduced, not what is already
there (the history scan, ``git:PATH``, covers that). Binary files are skipped and counted.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from jitsec.connectors.sources.git import LOG_FORMAT, CommitInfo, git_executable, repository_root

from jitsec.kernel.ports import ChunkReader, SourceErrors
from jitsec.kernel.records import Chunk, FileOrigin, Origin

# A hunk header, plain (``@@ -a,b +c,d @@``) or combined for a merge of N parents (N+1 ``@``, N ranges).
_HUNK = re.compile(rb"^(@@+) (?:-\d+(?:,\d+)? )+\+(\d+)(?:,\d+)? @@+")
_COMMIT_MARK = b"jitsec-commit "
ZERO_ID = re.compile(r"^0+$")
_ESCAPES = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}


@dataclass(frozen=True, slots=True)
class AddedLines:
    """A run of consecutive lines added to ``path`` (in ``commit``, or staged when it is None)."""

    commit: CommitInfo | None
    path: str
    line: int
    data: bytes


def unquote_path(raw: bytes) -> str:
    """A path as git prints it in diff headers: plain, or C-quoted with octal escapes."""
    text = raw.rstrip(b"\t").decode("utf-8", "surrogateescape")
    if not (text.startswith('"') and text.endswith('"')):
        return text
    out = bytearray()
    body = text[1:-1].encode("utf-8", "surrogateescape")
    index = 0
    while index < len(body):
        char = body[index]
        if char == 0x5C and index + 1 < len(body):  # backslash
            following = chr(body[index + 1])
            if following.isdigit():
                out.append(int(body[index + 1 : index + 4], 8))
                index += 4
                continue
            out.append(_ESCAPES.get(following, ord(following)))
            index += 2
            continue
        out.append(char)
        index += 1
    return out.decode("utf-8", "surrogateescape")


def _strip_prefix(path: str) -> str:
    return path[2:] if path.startswith("b/") else path


def parse_diff(lines: Iterator[bytes], errors: SourceErrors | None = None) -> Iterator[AddedLines]:
    """Added-line runs of a unified diff (``-U0`` or not), with ``jitsec-commit <LOG_FORMAT>`` marker
    lines naming the commit of the diffs that follow (a marker may give the id alone).

    A merge's combined diff (``--cc``) has one prefix column per parent: only lines added against
    every parent (``++``) are the merge's own (a conflict resolution, an "evil merge"); a line added
    against one parent only came from the other, whose commits are scanned on their own.
    """
    commit: CommitInfo | None = None
    path: str | None = None
    line = 0
    run: list[bytes] = []
    run_start = 0
    in_hunk = False
    columns = 1  # prefix columns: 1, or a merge's number of parents

    def flush() -> Iterator[AddedLines]:
        if run and path is not None:
            yield AddedLines(commit, path, run_start, b"".join(run))
        run.clear()

    for raw in lines:
        text = raw.rstrip(b"\n")
        if in_hunk and text[:1] in (b"+", b"-", b" ", b"\\"):
            prefix = text[:columns]
            if prefix == b"+" * columns:
                if not run:
                    run_start = line
                run.append(text[columns:] + b"\n")
                line += 1
            else:
                yield from flush()
                if b"-" not in prefix and not prefix.startswith(b"\\"):  # in the result
                    line += 1
            continue
        yield from flush()
        in_hunk = False
        if text.startswith(_COMMIT_MARK):
            commit = CommitInfo.parse(text[len(_COMMIT_MARK) :].strip(b"\r").split(b"\0"))
        elif text.startswith((b"diff --git ", b"diff --cc ", b"diff --combined ")):
            path = None
        elif text.startswith(b"+++ "):
            target = text[4:]
            path = None if target == b"/dev/null" else _strip_prefix(unquote_path(target))
        elif text.startswith(b"Binary files ") and errors is not None:
            errors.record("binary-skipped", text.decode("utf-8", "replace"))
        elif (match := _HUNK.match(text)) is not None:
            in_hunk = True
            columns = len(match.group(1)) - 1
            line = int(match.group(2))
    yield from flush()


def _diff_process(repo: Path, arguments: Sequence[str]) -> Iterator[bytes]:
    command = [
        git_executable(), "-C", str(repo), "-c", "core.quotePath=false", arguments[0],
        "-U0", "--no-color", "--no-renames", "--no-ext-diff", "--src-prefix=a/", "--dst-prefix=b/",
        *arguments[1:],
    ]  # fmt: skip
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        assert process.stdout is not None and process.stderr is not None
        stream: IO[bytes] = process.stdout
        yield from stream
        stderr = process.stderr.read().decode(errors="replace").strip()
        if process.wait() != 0:
            raise subprocess.CalledProcessError(process.returncode, command[3:], stderr=stderr)


class DiffSource(ChunkReader):
    """Chunks of the lines added by staged changes (``commits=None``) or by a range of commits."""

    def __init__(
        self,
        repo: Path | str,
        *,
        revisions: Sequence[str] | None = None,
        exclude: frozenset[str] = frozenset(),
    ) -> None:
        self.repo = Path(repo)
        self.revisions = None if revisions is None else tuple(revisions)
        self.exclude = exclude  # repository-relative paths never scanned (e.g. the baseline file itself)
        self.errors = SourceErrors()

    @classmethod
    def staged(cls, repo: Path | str, *, exclude: frozenset[str] = frozenset()) -> DiffSource:
        return cls(repo, exclude=exclude)

    def _arguments(self) -> list[str]:
        if self.revisions is None:
            return ["diff", "--cached", "--diff-filter=ACMR"]
        return [
            "log", "-p", "--cc", "--topo-order", "--reverse", "--diff-filter=ACMR",
            f"--format=format:{_COMMIT_MARK.decode()}{LOG_FORMAT}", *self.revisions, "--",
        ]  # fmt: skip

    def chunks(self) -> Iterator[Chunk]:
        root = repository_root(self.repo) if self.revisions is not None else ""
        for added in parse_diff(_diff_process(self.repo, self._arguments()), self.errors):
            if added.path in self.exclude:
                continue
            origin: Origin = (FileOrigin(added.path) if added.commit is None
                              else added.commit.origin(added.path, root))
            # hunks stand alone; the leak-to-revocation latency starts when git hands them over
            yield Chunk(added.data, origin, 0, added.line, read_at=time.monotonic(), whole=True)

    def acknowledge(self, chunk: Chunk) -> None:
        """A diff is read once; nothing to commit."""

    def close(self) -> None:
        """Nothing held open between chunks."""


def pushed_revisions(stdin_lines: Sequence[str], remote: str | None, repo: Path) -> list[list[str]]:
    """Revision arguments for each ref of git's pre-push input (``LOCAL_REF LOCAL_ID REMOTE_REF
    REMOTE_ID`` per line): deleted refs scan nothing, new branches scan what no remote-tracking ref of
    ``remote`` has, updates scan ``REMOTE_ID..LOCAL_ID`` (or as for a new branch when the remote's
    commit is not here, e.g. after a force push by someone else)."""
    ranges: list[list[str]] = []
    not_remote = ["--not", f"--remotes={remote}" if remote else "--remotes"]
    for raw in stdin_lines:
        fields = raw.split()
        if len(fields) != 4:
            continue
        _, local_id, _, remote_id = fields
        if ZERO_ID.match(local_id):
            continue
        if ZERO_ID.match(remote_id) or not _has_commit(repo, remote_id):
            ranges.append([local_id, *not_remote])
        else:
            ranges.append([f"{remote_id}..{local_id}"])
    return ranges


def _has_commit(repo: Path, object_id: str) -> bool:
    result = subprocess.run(
        [git_executable(), "-C", str(repo), "cat-file", "-e", f"{object_id}^{{commit}}"],
        capture_output=True,
        check=False,
    )
    return result.returncode == 0
