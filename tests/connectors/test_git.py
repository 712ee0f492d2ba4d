from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jitsec.connectors.sources.git import BlobChange, CommitInfo, GitError, GitHistorySource, _parse_raw_log
from jitsec.scanner.engine import Scanner
from jitsec.scanner.fingerprint import Fingerprinter
from jitsec.scanner.ruleset import load_ruleset

from jitsec.kernel.credential_format import mint
from jitsec.kernel.records import GitOrigin
from jitsec.pipeline.runner import run_sources
from jitsec.pipeline.stages import Callback


def commit_file(git, repo: Path, name: str, data: bytes, message: str) -> str:
    target = repo / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    git("--literal-pathspecs", "add", "--", name)
    git("commit", "-q", "-m", message)
    return git("rev-parse", "HEAD").strip()


def read_all(repo: Path, **options) -> tuple[GitHistorySource, dict[GitOrigin, bytes]]:
    source = GitHistorySource(repo, **options)
    blobs: dict[GitOrigin, bytes] = {}
    for chunk in source.chunks():
        assert isinstance(chunk.origin, GitOrigin)
        blobs[chunk.origin] = blobs.get(chunk.origin, b"") + chunk.data
    return source, blobs


def test_each_blob_once_located_by_the_commit_that_introduced_it(tmp_path: Path, git_repo) -> None:
    repo = tmp_path / "repo"
    first = commit_file(git_repo, repo, "config/app.env", b"TOKEN=one\n", "add config")
    second = commit_file(git_repo, repo, "README", b"hello\n", "readme")
    git_repo("checkout", "-q", "-b", "feature")
    feature = commit_file(git_repo, repo, "config/app.env", b"TOKEN=one\nTOKEN=two\n", "feature")
    git_repo("checkout", "-q", "main")
    # The same content under another name, later: already scanned, not scanned again.
    commit_file(git_repo, repo, "copy.env", b"TOKEN=one\n", "copy")
    git_repo("merge", "-q", "--no-edit", "feature")

    source, blobs = read_all(repo)
    assert blobs == {
        GitOrigin(first, "config/app.env"): b"TOKEN=one\n",
        GitOrigin(second, "README"): b"hello\n",
        GitOrigin(feature, "config/app.env"): b"TOKEN=one\nTOKEN=two\n",
    }
    assert source.stats.blobs_scanned == 3
    assert source.stats.blobs_repeated >= 1
    assert source.stats.commits == 5


def test_unmerged_branches_and_tags_are_covered(tmp_path: Path, git_repo) -> None:
    repo = tmp_path / "repo"
    commit_file(git_repo, repo, "a.txt", b"a\n", "a")
    git_repo("checkout", "-q", "-b", "abandoned")
    hidden = commit_file(git_repo, repo, "leak.txt", b"secret on a side branch\n", "oops")
    git_repo("tag", "side", hidden)
    git_repo("checkout", "-q", "main")
    git_repo("branch", "-D", "abandoned")
    _, blobs = read_all(repo)
    assert blobs[GitOrigin(hidden, "leak.txt")] == b"secret on a side branch\n"


def test_binary_blobs_are_skipped_and_counted(tmp_path: Path, git_repo) -> None:
    repo = tmp_path / "repo"
    commit_file(git_repo, repo, "image.png", b"\x89PNG\r\n\x1a\n\x00\x00" + bytes(range(256)), "png")
    commit_file(git_repo, repo, "text.txt", b"\xff\xfe invalid utf-8 but text\n", "text")
    source, blobs = read_all(repo)
    assert [origin.path for origin in blobs] == ["text.txt"]
    assert source.stats.blobs_binary == 1


def test_large_blob_streams_in_line_aligned_chunks(tmp_path: Path, git_repo) -> None:
    repo = tmp_path / "repo"
    content = b"".join(b"line %06d of a large file\n" % number for number in range(20000))
    commit_file(git_repo, repo, "big.log", content, "big")
    source = GitHistorySource(repo, chunk_size=4096)
    chunks = list(source.chunks())
    assert len(chunks) > 100
    assert b"".join(chunk.data for chunk in chunks) == content
    for chunk in chunks:
        assert chunk.data.endswith(b"\n")
        assert content[chunk.offset : chunk.offset + len(chunk.data)] == chunk.data
        assert chunk.line == content[: chunk.offset].count(b"\n") + 1


def test_unusual_paths_are_reported_as_written(tmp_path: Path, git_repo) -> None:
    repo = tmp_path / "repo"
    names = ['dir with space/naïve "quoted".txt', ":starts-with-colon", "new\nline.txt", "tab\there"]
    for number, name in enumerate(names):
        commit_file(git_repo, repo, name, b"x%d\n" % number, "odd")
    _, blobs = read_all(repo)
    assert sorted(origin.path for origin in blobs) == sorted(names)


def test_empty_repository_yields_nothing(tmp_path: Path, git_repo) -> None:
    source, blobs = read_all(tmp_path / "repo")
    assert blobs == {} and source.stats.commits == 0


def test_not_a_repository_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(GitError, match="not a git repository"):
        list(GitHistorySource(tmp_path).chunks())


def test_history_scan_through_the_pipeline_locates_by_commit_path_and_line(tmp_path: Path, git_repo) -> None:
    repo = tmp_path / "repo"
    secret = mint("jit_")
    commit_file(git_repo, repo, "app.py", b"import os\n", "start")
    leak = commit_file(git_repo, repo, "app.py", f"import os\n\nTOKEN = '{secret}'\n".encode(), "leak")
    commit_file(git_repo, repo, "app.py", b"import os\nTOKEN = os.environ['TOKEN']\n", "fix")
    pack = Path(__file__).parent / "packs" / "broker.toml"
    scanner = Scanner(load_ruleset([pack], include_default=False), Fingerprinter(b"k" * 32), engine="python")
    found = []
    collect = Callback(lambda chunk, findings: found.extend(findings))
    stats = run_sources([GitHistorySource(repo)], scanner, [collect])
    assert [(f.origin, f.line, f.column, f.rule_id) for f in found] == [
        (GitOrigin(leak, "app.py"), 3, 10, "test-broker-token")
    ]
    assert secret not in repr(found)
    assert stats.errors.total == 0


hex40 = st.text(alphabet="0123456789abcdef", min_size=40, max_size=40)
raw_paths = st.binary(min_size=1, max_size=30).filter(lambda p: b"\0" not in p)
changes = st.tuples(st.sampled_from([b"A", b"M", b"D", b"T"]), st.sampled_from([b"100644", b"160000"]), hex40,
                    raw_paths)


# Author fields may be empty or start with ':' (what marks a raw entry): they are read by position.
names = st.text(st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)), max_size=12)


@given(st.lists(st.tuples(hex40, names, st.lists(changes, max_size=4)), max_size=5))
def test_raw_log_parser_yields_exactly_the_added_and_modified_blobs(log) -> None:
    tokens: list[bytes] = []
    expected: list[BlobChange] = []
    for commit_id, name, entries in log:
        tokens += [b"", commit_id.encode(), name.encode(), b"a@b.example", b"2026-01-02T03:04:05+01:00",
                   (":" + name).encode()]
        commit = CommitInfo(commit_id, name, "a@b.example", "2026-01-02T03:04:05+01:00", ":" + name)
        expected.append(BlobChange(commit, "", ""))
        for number, (status, mode, blob, path) in enumerate(entries):
            header = b":100644 %s %s %s %s" % (mode, b"1" * 40, blob.encode(), status)
            tokens += [(b"\n" if number == 0 else b"") + header, path]
            if status != b"D" and mode != b"160000" and blob.strip("0"):
                expected.append(BlobChange(commit, path.decode("utf-8", "surrogateescape"), blob))
    assert list(_parse_raw_log(iter(tokens))) == expected


def test_every_blob_carries_its_commit_s_author_date_and_subject(tmp_path: Path, git_repo) -> None:
    repo = tmp_path / "repo"
    (repo / "conf dir").mkdir()
    (repo / "conf dir" / "prod é.env").write_bytes(b"TOKEN=one\n")
    git_repo("add", "-A")
    git_repo("commit", "-q", "--author=Zoë Łukasz-Ünïcode <zoe@example.org>",
             "--date=2026-03-04T05:06:07-08:00", "-F", "-", stdin=b"Add config:\nsecond line\n\nBody.\n")
    first = git_repo("rev-parse", "HEAD").strip()
    commit_file(git_repo, repo, "b.txt", b"b\n", "plain")
    _, blobs = read_all(repo)
    origin = next(o for o in blobs if o.commit == first)
    assert (origin.path, origin.author_name, origin.author_email, origin.author_date, origin.subject) == (
        "conf dir/prod é.env", "Zoë Łukasz-Ünïcode", "zoe@example.org", "2026-03-04T05:06:07-08:00",
        "Add config: second line")
    assert origin.repository == str(repo.resolve())
    assert len(origin.commit) == 40
    assert {o.author_name for o in blobs if o.commit != first} == {"t"}
