from __future__ import annotations

import difflib
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from jitsec.connectors.sources.git_diff import DiffSource, parse_diff, pushed_revisions, unquote_path

from jitsec.kernel.records import FileOrigin, GitOrigin

lines = st.lists(st.sampled_from(["a", "b", "c", "key=1", "+plus", "-minus", " space", "@@ x"]), max_size=12)


@given(lines, lines)
def test_added_runs_land_on_their_new_line_numbers(old: list[str], new: list[str]) -> None:
    diff = difflib.unified_diff(
        [line + "\n" for line in old], [line + "\n" for line in new], "a/f", "b/f", n=0, lineterm="\n"
    )
    added = list(parse_diff(iter(line.encode() for line in diff)))
    new_lines = [line + "\n" for line in new]
    for run in added:
        assert run.path == "f"
        run_lines = run.data.decode().splitlines(keepends=True)
        assert new_lines[run.line - 1 : run.line - 1 + len(run_lines)] == run_lines
    total = sum(run.data.count(b"\n") for run in added)
    opcodes = difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes()
    assert total == sum(j2 - j1 for tag, _, _, j1, j2 in opcodes if tag in ("insert", "replace"))


def test_quoted_paths_are_unquoted() -> None:
    assert unquote_path(b'"b/na\\303\\257ve \\"q\\".txt"\t') == 'b/naïve "q".txt'
    assert unquote_path(b"b/plain name.txt\t") == "b/plain name.txt"


def write(repo: Path, name: str, data: bytes) -> None:
    (repo / name).parent.mkdir(parents=True, exist_ok=True)
    (repo / name).write_bytes(data)


def commit_base(repo: Path, git_repo) -> str:
    """A first commit of ``a.txt`` (``a``); its id."""
    write(repo, "a.txt", b"a\n")
    git_repo("add", ".")
    git_repo("commit", "-q", "-m", "base")
    return git_repo("rev-parse", "HEAD").strip()


def test_staged_changes_only_added_lines(tmp_path: Path, git_repo) -> None:
    repo = tmp_path / "repo"
    write(repo, "app.env", b"one\ntwo\nthree\n")
    git_repo("add", ".")
    git_repo("commit", "-q", "-m", "base")
    write(repo, "app.env", b"one\nTOKEN=new\ntwo\nthree\nlast\n")
    write(repo, "new.txt", b"fresh\n")
    write(repo, "unstaged.txt", b"not staged\n")
    write(repo, "image.bin", b"\x00\x01binary")
    git_repo("add", "app.env", "new.txt", "image.bin")
    source = DiffSource.staged(repo)
    chunks = list(source.chunks())
    located = [(chunk.origin, chunk.line, chunk.data) for chunk in chunks]
    assert located == [
        (FileOrigin("app.env"), 2, b"TOKEN=new\n"),
        (FileOrigin("app.env"), 5, b"last\n"),
        (FileOrigin("new.txt"), 1, b"fresh\n"),
    ]
    assert source.errors.counts == {"binary-skipped": 1}


def test_commit_range_locates_by_commit(tmp_path: Path, git_repo) -> None:
    repo = tmp_path / "repo"
    base = commit_base(repo, git_repo)
    write(repo, "a.txt", b"a\nb\n")
    git_repo("commit", "-q", "-am", "b")
    second = git_repo("rev-parse", "HEAD").strip()
    chunks = list(DiffSource(repo, revisions=[f"{base}..{second}"]).chunks())
    located = [(chunk.origin, chunk.line, chunk.data) for chunk in chunks]
    assert located == [(GitOrigin(second, "a.txt"), 2, b"b\n")]


def test_pre_push_input_becomes_ranges(tmp_path: Path, git_repo) -> None:
    repo = tmp_path / "repo"
    write(repo, "a.txt", b"a\n")
    git_repo("add", ".")
    git_repo("commit", "-q", "-m", "base")
    head = git_repo("rev-parse", "HEAD").strip()
    zero = "0" * 40
    unknown = "1" * 40
    stdin = [
        f"refs/heads/main {head} refs/heads/main {zero}",  # new branch
        f"refs/heads/main {head} refs/heads/main {head}",  # update
        f"(delete) {zero} refs/heads/old {head}",  # deletion: nothing to scan
        f"refs/heads/main {head} refs/heads/main {unknown}",  # remote commit we do not have
    ]
    assert pushed_revisions(stdin, "origin", repo) == [
        [head, "--not", "--remotes=origin"],
        [f"{head}..{head}"],
        [head, "--not", "--remotes=origin"],
    ]


def test_staged_paths_with_special_characters(tmp_path: Path, git_repo) -> None:
    repo = tmp_path / "repo"
    names = ['sp ace/naïve "q".txt', "new\nline.txt", "tab\there", "back\\slash"]
    for name in names:
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_bytes(b"added\n")
    git_repo("add", "-A")
    paths = sorted(chunk.origin.path for chunk in DiffSource.staged(repo).chunks())
    assert paths == sorted(names)


def test_a_merge_is_scanned_for_what_only_the_merge_added(tmp_path: Path, git_repo) -> None:
    """An "evil merge": a line added while resolving the merge is in no parent, so no branch commit
    holds it. The lines the merge brought from a branch are found at that branch's commit, once."""
    repo = tmp_path / "repo"
    write(repo, "f.txt", b"a\nb\nc\n")
    git_repo("add", ".")
    git_repo("commit", "-q", "-m", "base")
    base = git_repo("rev-parse", "HEAD").strip()
    git_repo("checkout", "-q", "-b", "feature")
    write(repo, "f.txt", b"a\nb\nc\nfeature=1\n")
    git_repo("commit", "-q", "-am", "feature")
    feature = git_repo("rev-parse", "HEAD").strip()
    git_repo("checkout", "-q", "main")
    write(repo, "f.txt", b"main=1\na\nb\nc\n")
    git_repo("commit", "-q", "-am", "main")
    git_repo("merge", "-q", "--no-commit", "feature")
    write(repo, "f.txt", b"main=1\na\nb\nc\nfeature=1\nTOKEN=added-in-the-merge\n")
    git_repo("add", ".")
    git_repo("commit", "-q", "-m", "merge")
    merge = git_repo("rev-parse", "HEAD").strip()
    located = [(c.origin, c.line, c.data) for c in DiffSource(repo, revisions=[f"{base}..{merge}"]).chunks()]
    assert (GitOrigin(merge, "f.txt"), 6, b"TOKEN=added-in-the-merge\n") in located
    assert [item for item in located if item[2] == b"feature=1\n"] == [(GitOrigin(feature, "f.txt"), 4,
                                                                        b"feature=1\n")]


def test_combined_hunks_count_result_lines_over_every_parent() -> None:
    diff = [b"jitsec-commit m1\n", b"diff --cc f.txt\n", b"--- a/f.txt\n", b"+++ b/f.txt\n",
            b"@@@ -5,0 -4,1 +5,4 @@@\n", b"+ from-one-parent\n", b"- gone-from-first\n", b"++evil\n",
            b" +from-the-other\n", b"++evil-too\n"]
    assert [(a.commit.sha if a.commit else None, a.path, a.line, a.data) for a in parse_diff(iter(diff))] == [
        ("m1", "f.txt", 6, b"evil\n"), ("m1", "f.txt", 8, b"evil-too\n")]


def test_pushed_lines_carry_their_commit_s_authorship(tmp_path: Path, git_repo) -> None:
    repo = tmp_path / "repo"
    base = commit_base(repo, git_repo)
    write(repo, "dir with space/é.txt", b"KEY=1\n")
    git_repo("add", ".")
    git_repo("commit", "-q", "--author=Ærlig Ñandú <an@example.org>", "--date=2026-05-06T07:08:09+02:00",
             "-F", "-", stdin=b"Subject here\nstill subject\n\nbody line\n")
    (chunk,) = DiffSource(repo, revisions=[f"{base}..HEAD"]).chunks()
    origin = chunk.origin
    assert isinstance(origin, GitOrigin)
    assert (origin.path, origin.author_name, origin.author_email, origin.author_date, origin.subject) == (
        "dir with space/é.txt", "Ærlig Ñandú", "an@example.org", "2026-05-06T07:08:09+02:00",
        "Subject here still subject")
    assert origin.commit == git_repo("rev-parse", "HEAD").strip()
    assert origin.repository == str(repo.resolve())
