"""Runs the agent (``jitsec.conformance.agent``) as a real subprocess in a sandbox of its own.

The sandbox gives the agent a private working directory, ``HOME`` and ``TMPDIR``, so that "what the
agent left behind" is a directory the suite can search completely. The job, with the grant, goes over
stdin and the agent's answers come back over stdout: neither touches a file or the environment.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ANSWER_TIMEOUT = 60.0
PASSED_ENV = ("PATH", "LANG", "LC_ALL", "PYTHONPATH", "VIRTUAL_ENV", "SYSTEMROOT")


class AgentFailed(RuntimeError):
    """The agent process did not do its task (the message names what, never a secret)."""


@dataclass(frozen=True, slots=True)
class HeldSecret:
    lease_id: str
    engine: str
    value: str = field(repr=False)
    username: str | None = None
    replaced: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # (lease id, value) rotated out


@dataclass(frozen=True, slots=True)
class AgentReport:
    task_token: str = field(repr=False)
    secrets: tuple[HeldSecret, ...] = ()

    def values(self) -> tuple[str, ...]:
        out = [self.task_token]
        for held in self.secrets:
            out.append(held.value)
            out.extend(value for _, value in held.replaced)
        return tuple(out)


class AgentProcess:
    def __init__(self, command: Sequence[str], sandbox: Path) -> None:
        self.sandbox = sandbox
        self.cwd, self.home, self.tmp = sandbox / "work", sandbox / "home", sandbox / "tmp"
        for directory in (self.cwd, self.home, self.tmp):
            directory.mkdir(parents=True, exist_ok=True)
        env = {name: os.environ[name] for name in PASSED_ENV if name in os.environ}
        env.update(HOME=str(self.home), TMPDIR=str(self.tmp), PYTHONUNBUFFERED="1")
        self._stderr = (sandbox / "work" / "stderr.log").open("wb")
        self._process = subprocess.Popen(
            list(command),
            cwd=self.cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )
        self._lines: queue.Queue[bytes] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def roots(self) -> tuple[Path, ...]:
        """Everything the agent could write to: working directory, home, temporary directory."""
        return (self.cwd, self.home, self.tmp)

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            self._lines.put(line)
        self._lines.put(b"")

    def _answer(self, timeout: float = ANSWER_TIMEOUT) -> dict[str, Any]:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise AgentFailed(f"the agent did not answer within {timeout:g} s") from None
        if not line:
            raise AgentFailed(f"the agent exited (status {self._process.wait(5)})")
        message = json.loads(line)
        if "error" in message:
            raise AgentFailed(f"the agent failed: {message['error']}")
        return message

    def run_task(self, job: dict[str, Any]) -> AgentReport:
        """Send the job; return what the agent held once it has completed its task."""
        assert self._process.stdin is not None
        self._process.stdin.write((json.dumps(job) + "\n").encode())
        self._process.stdin.flush()
        held = self._answer()
        state = self._answer()
        if state.get("state") != "completed":
            raise AgentFailed("the agent did not report completion")
        return AgentReport(
            task_token=held["task_token"],
            secrets=tuple(
                HeldSecret(
                    s["lease_id"],
                    s["engine"],
                    s["value"],
                    s.get("username"),
                    tuple((r["lease_id"], r["value"]) for r in s.get("replaced", ())),
                )
                for s in held["secrets"]
            ),
        )

    def stop(self) -> None:
        """Tell the idle agent to exit; kill it if it does not."""
        try:
            if self._process.poll() is None and self._process.stdin is not None:
                self._process.stdin.write(b"exit\n")
                self._process.stdin.flush()
                self._process.stdin.close()
            self._process.wait(10)
        except (OSError, subprocess.TimeoutExpired):
            self._process.kill()
            self._process.wait(10)
        finally:
            self._stderr.close()

    def __enter__(self) -> AgentProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
