"""`git:PATH` followed: new commits on any ref as they arrive, checkpoints across restarts, and the
`jitsec watch` process that runs it. Real repositories in tmp_path, real git, real signals."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jitsec.connectors.checkpoints import CheckpointStore
from jitsec.connectors.sources.git import GitHistorySource, _listed_ids

from jitsec.kernel.credential_format import mint
from jitsec.kernel.records import GitOrigin

POLL = 0.05  # in-process sources poll fast; nothing below depends on how fast
WAIT = 60.0  # generous: a loaded CI machine is slow, and a passing test does not wait this long


def commit_file(git: Callable[..., str], repo: Path, name: str, text: str, message: str) -> str:
    (repo / name).write_text(text)
    git("add", "--", name)
    git("commit", "-q", "-m", message)
    return git("rev-parse", "HEAD").strip()


def blobs(follower) -> dict[GitOrigin, bytes]:
    """What the source yielded so far, by origin (round markers, which are empty, left out)."""
    found: dict[GitOrigin, bytes] = {}
    for chunk in list(follower.chunks):
        if chunk.data:
            found[chunk.origin] = found.get(chunk.origin, b"") + chunk.data
    return found


def markers(follower) -> int:
    return sum(1 for chunk in list(follower.chunks) if not chunk.data)


def saved_tips(directory: Path) -> list[str]:
    [document] = directory.glob("*.json")
    return json.loads(document.read_text())["value"]["tips"]


def followed(repo: Path, **options) -> GitHistorySource:
    return GitHistorySource(repo, follow=True, poll_interval=POLL, **options)


def test_a_commit_made_while_watching_is_scanned_with_its_commit(tmp_path: Path, git_repo, follow) -> None:
    repo = tmp_path / "repo"
    first = commit_file(git_repo, repo, "a.txt", "old\n", "first")
    follower = follow(followed(repo))
    follower.wait_for(lambda f: markers(f) == 1, WAIT)
    assert blobs(follower) == {GitOrigin(first, "a.txt"): b"old\n"}

    second = commit_file(git_repo, repo, "a.txt", "old\nnew line\n", "second")
    follower.wait_for(lambda f: markers(f) == 2, WAIT)
    assert blobs(follower) == {
        GitOrigin(first, "a.txt"): b"old\n",
        GitOrigin(second, "a.txt"): b"old\nnew line\n",  # the old blobs are not scanned again
    }
    assert follower.source.stats.commits == 2
    assert follower.source.stats.rounds == 2


def test_new_branches_force_pushes_and_deleted_refs(tmp_path: Path, git_repo, follow) -> None:
    repo = tmp_path / "repo"
    base = commit_file(git_repo, repo, "a.txt", "base\n", "base")
    doomed = commit_file(git_repo, repo, "b.txt", "to be rewritten\n", "doomed")
    follower = follow(followed(repo))
    follower.wait_for(lambda f: markers(f) == 1, WAIT)

    # A new branch from an old commit: only its own commit is new.
    git_repo("checkout", "-q", "-b", "feature", base)
    feature = commit_file(git_repo, repo, "c.txt", "feature\n", "feature")
    follower.wait_for(lambda f: markers(f) == 2, WAIT)
    expected = {GitOrigin(base, "a.txt"), GitOrigin(doomed, "b.txt"), GitOrigin(feature, "c.txt")}
    assert set(blobs(follower)) == expected

    # A branch pointing at a commit already scanned: nothing to scan, no round.
    changes = follower.source.stats.ref_changes
    git_repo("branch", "again", doomed)
    follower.wait_for(lambda f: f.source.stats.ref_changes > changes, WAIT)

    # A force-push of main (rewritten from base): only the replacement commit.
    git_repo("checkout", "-q", "main")
    git_repo("reset", "-q", "--hard", base)
    rewritten = commit_file(git_repo, repo, "b.txt", "rewritten\n", "rewritten")
    follower.wait_for(lambda f: markers(f) == 3, WAIT)
    assert blobs(follower)[GitOrigin(rewritten, "b.txt")] == b"rewritten\n"
    assert len(blobs(follower)) == 4

    # A deleted branch: seen, nothing scanned.
    changes = follower.source.stats.ref_changes
    git_repo("branch", "-D", "feature", "again")
    follower.wait_for(lambda f: f.source.stats.ref_changes > changes, WAIT)
    last = commit_file(git_repo, repo, "d.txt", "last\n", "last")
    follower.wait_for(lambda f: markers(f) == 4, WAIT)
    assert len(blobs(follower)) == 5 and GitOrigin(last, "d.txt") in blobs(follower)
    assert follower.source.stats.commits == 5  # each commit listed once over all rounds
    assert follower.source.errors.total == 0


def test_a_detached_head_and_tags_are_followed(tmp_path: Path, git_repo, follow) -> None:
    repo = tmp_path / "repo"
    base = commit_file(git_repo, repo, "a.txt", "base\n", "base")
    follower = follow(followed(repo))
    follower.wait_for(lambda f: markers(f) == 1, WAIT)

    git_repo("checkout", "-q", "--detach")
    detached = commit_file(git_repo, repo, "h.txt", "on a detached head\n", "detached")
    follower.wait_for(lambda f: markers(f) == 2, WAIT)
    assert GitOrigin(detached, "h.txt") in blobs(follower)

    # A commit only an annotated tag reaches (HEAD moved away first), and a tag of a tree.
    git_repo("checkout", "-q", "main")
    tagged = commit_file(git_repo, repo, "t.txt", "tagged only\n", "tagged")
    git_repo("tag", "-a", "-m", "release", "v1", tagged)
    git_repo("tag", "tree-tag", f"{base}^{{tree}}")
    git_repo("reset", "-q", "--hard", base)
    follower.wait_for(lambda f: GitOrigin(tagged, "t.txt") in blobs(f), WAIT)
    assert len(blobs(follower)) == 3
    assert follower.source.errors.total == 0


def test_listed_ids_keep_object_ids_only() -> None:
    listing = (
        b"1f0c2d3e4a5b6c7d8e9f00112233445566778899 HEAD\n"
        b"1f0c2d3e4a5b6c7d8e9f00112233445566778899 refs/heads/main\n"
        b"not-an-id refs/heads/odd\n\n" + b"ab" * 32 + b" refs/tags/sha256\n"
    )
    assert _listed_ids(listing) == ["1f0c2d3e4a5b6c7d8e9f00112233445566778899"] * 2 + ["ab" * 32]


@given(st.lists(st.tuples(st.binary(min_size=20, max_size=20), st.text(min_size=1, max_size=30))))
def test_listed_ids_round_trip(refs: list[tuple[bytes, str]]) -> None:
    listing = "".join(f"{object_id.hex()} {name}\n" for object_id, name in refs).encode()
    assert _listed_ids(listing) == [object_id.hex() for object_id, _ in refs]


def test_a_restart_with_a_checkpoint_scans_only_what_came_since(tmp_path: Path, git_repo, follow) -> None:
    repo = tmp_path / "repo"
    store = CheckpointStore(tmp_path / "checkpoints")
    first = commit_file(git_repo, repo, "a.txt", "one\n", "one")
    second = commit_file(git_repo, repo, "a.txt", "one\ntwo\n", "two")
    follower = follow(followed(repo, checkpoints=store))
    follower.wait_for(lambda f: markers(f) == 1, WAIT)
    follower.stop()
    assert saved_tips(tmp_path / "checkpoints") == [second]  # the minimal set: one tip for one line

    # Committed while nothing watched, on main and on a new branch.
    third = commit_file(git_repo, repo, "a.txt", "one\ntwo\nthree\n", "three")
    git_repo("checkout", "-q", "-b", "side", first)
    side = commit_file(git_repo, repo, "s.txt", "side\n", "side")
    again = follow(followed(repo, checkpoints=store))
    again.wait_for(lambda f: markers(f) == 1, WAIT)
    assert blobs(again) == {
        GitOrigin(third, "a.txt"): b"one\ntwo\nthree\n",
        GitOrigin(side, "s.txt"): b"side\n",
    }  # nothing from before the restart, nothing missed while it was down
    again.stop()
    assert sorted(saved_tips(tmp_path / "checkpoints")) == sorted([third, side])


def test_a_round_not_acknowledged_is_not_checkpointed(tmp_path: Path, git_repo, follow) -> None:
    repo = tmp_path / "repo"
    store = CheckpointStore(tmp_path / "checkpoints")
    first = commit_file(git_repo, repo, "a.txt", "one\n", "one")
    unacknowledged = follow(followed(repo, checkpoints=store), acknowledge=False)
    unacknowledged.wait_for(lambda f: markers(f) == 1, WAIT)
    unacknowledged.stop()

    again = follow(followed(repo, checkpoints=store))
    again.wait_for(lambda f: markers(f) == 1, WAIT)
    assert blobs(again) == {GitOrigin(first, "a.txt"): b"one\n"}  # scanned again, not skipped


def test_a_checkpoint_naming_commits_that_are_gone_is_survived(tmp_path: Path, git_repo, follow) -> None:
    repo = tmp_path / "repo"
    store = CheckpointStore(tmp_path / "checkpoints")
    first = commit_file(git_repo, repo, "a.txt", "one\n", "one")
    source = followed(repo, checkpoints=store)
    store.save(f"git:{repo.resolve()}", {"tips": ["0" * 39 + "1", first]})
    follower = follow(source)
    second = commit_file(git_repo, repo, "a.txt", "one\ntwo\n", "two")
    follower.wait_for(lambda f: GitOrigin(second, "a.txt") in blobs(f), WAIT)
    assert set(blobs(follower)) == {GitOrigin(second, "a.txt")}
    follower.stop()  # else its next checkpoint could replace the damaged one written below

    store.save(f"git:{repo.resolve()}", {"tips": "not a list"})
    broken = follow(followed(repo, checkpoints=store))
    broken.wait_for(lambda f: len(blobs(f)) == 2, WAIT)  # the whole history again, and the problem counted
    assert broken.source.errors.counts == {"checkpoint": 1}


def test_an_empty_repository_is_waited_on(tmp_path: Path, git_repo, follow) -> None:
    repo = tmp_path / "repo"
    follower = follow(followed(repo))
    follower.wait_for(lambda f: f.source.stats.ref_changes >= 1, WAIT)
    first = commit_file(git_repo, repo, "a.txt", "one\n", "one")
    follower.wait_for(lambda f: GitOrigin(first, "a.txt") in blobs(f), WAIT)


def test_a_repository_gone_for_a_while_is_counted_once_and_followed_again(
    tmp_path: Path, git_repo, follow
) -> None:
    repo = tmp_path / "repo"
    commit_file(git_repo, repo, "a.txt", "one\n", "one")
    follower = follow(followed(repo))
    follower.wait_for(lambda f: markers(f) == 1, WAIT)
    repo.rename(tmp_path / "away")
    follower.wait_for(lambda f: f.source.errors.counts.get("git", 0) == 1, WAIT)
    time.sleep(4 * POLL)  # a few more failed polls: the same episode, not counted again
    (tmp_path / "away").rename(repo)
    second = commit_file(git_repo, repo, "a.txt", "one\ntwo\n", "two")
    follower.wait_for(lambda f: GitOrigin(second, "a.txt") in blobs(f), WAIT)
    assert follower.source.errors.counts == {"git": 1}  # one episode, however many polls failed


def test_bad_settings_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="poll_interval"):
        GitHistorySource(tmp_path, follow=True, poll_interval=0)


# -- `jitsec watch git:PATH`, a real process --------------------------------------------------------


def token_rows(lines) -> list[tuple[str, int]]:  # lines: conftest's Lines
    return [(row["path"], row["line"]) for row in lines.rows() if row["rule"] == "broker-engine-token"]


@pytest.mark.slow
def test_watch_reports_new_commits_stops_on_sigterm_and_resumes(
    tmp_path: Path, git_repo, watch_env, start_watch
) -> None:
    repo = tmp_path / "repo"
    old_secret, live_secret, later_secret = mint("jit_"), mint("jit_"), mint("jit_")
    old = commit_file(git_repo, repo, "old.env", f"TOKEN={old_secret}\n", "old leak")
    arguments = [f"git:{repo}", "-f", "jsonl", "--checkpoint-dir", str(tmp_path / "ck")]
    process, out, err = start_watch(arguments, watch_env)
    try:
        out.wait_for("broker-engine-token")  # the history first
        # No newline at the end: reported without waiting for the next commit to end the stream scan.
        leak = commit_file(git_repo, repo, "deploy.env", f"A=1\nTOKEN={live_secret}", "live leak")
        out.wait_for(leak[:12])
        git_repo("checkout", "-q", "-b", "topic")
        topic = commit_file(git_repo, repo, "topic.env", f"TOKEN={mint('jit_')}\n", "topic leak")
        out.wait_for(topic[:12])
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0  # a supervisor's stop is clean
    finally:
        process.kill()
    err.wait_for(r"stopped \(SIGTERM\)")
    assert token_rows(out) == [
        (f"{old[:12]}:old.env", 1), (f"{leak[:12]}:deploy.env", 2), (f"{topic[:12]}:topic.env", 1),
    ]  # fmt: skip

    git_repo("checkout", "-q", "main")  # committed while the watcher is down
    later = commit_file(git_repo, repo, "later.env", f"x\ny\nTOKEN={later_secret}\n", "later leak")
    again, out2, err2 = start_watch([*arguments, "--exit-when-idle", "2"], watch_env)
    assert again.wait(timeout=120) == 1
    err2.wait_for(r"stopped \(idle")
    assert token_rows(out2) == [(f"{later[:12]}:later.env", 3)]
    everything = "".join(out.lines + err.lines + out2.lines + err2.lines)
    assert old_secret not in everything and live_secret not in everything and later_secret not in everything


@pytest.mark.slow
def test_watch_without_new_commits_ends_when_idle(tmp_path: Path, git_repo, watch_env, start_watch) -> None:
    repo = tmp_path / "repo"
    commit_file(git_repo, repo, "a.txt", "clean\n", "clean")
    process, _, err = start_watch([f"git:{repo}", "--exit-when-idle", "1"], watch_env)
    assert process.wait(timeout=60) == 0
    err.wait_for(r"1 commits, 1 blobs scanned")


def test_a_bad_poll_interval_is_exit_2(tmp_path: Path, git_repo, watch_env) -> None:
    repo = tmp_path / "repo"
    commit_file(git_repo, repo, "a.txt", "clean\n", "clean")
    result = subprocess.run(
        ["jitsec", "watch", f"git:{repo}"], capture_output=True, text=True, timeout=60, check=False,
        env={**watch_env, "JITSEC_GIT_POLL_INTERVAL": "soon"},
    )  # fmt: skip
    assert result.returncode == 2
    assert "JITSEC_GIT_POLL_INTERVAL" in result.stderr
