"""Helpers for following sources: run one on a thread and wait for what it yields."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from connectors.base import Source
from scanner.model import Chunk


class Follower:
    """Reads a source on a background thread, acknowledging each chunk as it arrives."""

    def __init__(self, source: Source, *, acknowledge: bool = True) -> None:
        self.source = source
        self.chunks: list[Chunk] = []
        self.failure: BaseException | None = None
        self._acknowledge = acknowledge
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for chunk in self.source.chunks():
                self.chunks.append(chunk)
                if self._acknowledge:
                    self.source.acknowledge(chunk)
        except BaseException as exc:
            self.failure = exc

    @property
    def data(self) -> bytes:
        return b"".join(chunk.data for chunk in self.chunks)

    def wait_for(self, predicate: Callable[[Follower], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self):
            if self.failure is not None:
                raise AssertionError("source failed") from self.failure
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; got {self.data!r}")
            time.sleep(0.01)

    def wait_for_data(self, expected: bytes, timeout: float = 10.0) -> None:
        self.wait_for(lambda follower: expected in follower.data, timeout)

    def stop(self) -> None:
        self.source.close()
        self._thread.join(timeout=10)
        assert not self._thread.is_alive(), "source did not stop after close()"
        if self.failure is not None:
            raise AssertionError("source failed") from self.failure


@pytest.fixture
def follow() -> Iterator[Callable[..., Follower]]:
    started: list[Follower] = []

    def start(source: Source, **options: bool) -> Follower:
        follower = Follower(source, **options)
        started.append(follower)
        return follower

    yield start
    for follower in started:
        follower.source.close()


@pytest.fixture
def git_repo(tmp_path: Path) -> Callable[..., str]:
    """A fresh repository in tmp_path/repo; returns a function running git in it."""
    repo = tmp_path / "repo"
    repo.mkdir()

    def git(*arguments: str, stdin: bytes | None = None) -> str:
        result = subprocess.run(
            ["git", "-C", str(repo), *arguments],
            input=stdin,
            capture_output=True,
            check=True,
            env={
                "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
                "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org",
                "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(tmp_path), "PATH": "/usr/bin:/bin",
            },
        )  # fmt: skip
        return result.stdout.decode()

    git("init", "-q", "-b", "main")
    return git
