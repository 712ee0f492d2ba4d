"""The progress bar on a real terminal (a pseudo-terminal): findings print above it, never onto its
line, and it is gone when the scan ends."""

from __future__ import annotations

import os
import pty
import re
import secrets
import string
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")


def run_in_terminal(args: list[str], cwd: Path, home: Path) -> str:
    pid, descriptor = pty.fork()
    if pid == 0:  # the child: the real CLI on the terminal
        os.chdir(cwd)
        os.environ["JITSEC_HOME"] = str(home)
        os.environ.pop("NO_COLOR", None)
        os.execv(sys.executable, [sys.executable, "-m", "jitsec", *args])  # noqa: S606 - no shell wanted
    output = b""
    while True:
        try:
            data = os.read(descriptor, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        output += data
    os.waitpid(pid, 0)
    return output.decode("utf-8", "replace")


def test_findings_print_above_the_progress_bar(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    alphabet = string.ascii_letters + string.digits
    prose = "".join(f"line {n}: the quick brown fox jumps over the lazy dog\n" for n in range(4000))
    for index in range(30):  # enough bytes for the bar to be drawn before the findings come
        (tree / f"noise{index:02}.txt").write_text(prose)
    key = "sk_live_" + "".join(secrets.choice(alphabet) for _ in range(28))
    (tree / "zz-leak.env").write_text(f"STRIPE_KEY={key}\n")

    screen = run_in_terminal(["scan", "--progress", "."], tree, tmp_path / "home")

    assert "scanning" in screen, "no progress bar was drawn"
    assert "zz-leak.env:1:" in screen and key not in screen
    for match in re.finditer(r"zz-leak\.env:1:", screen):
        line_start = max(screen.rfind("\r", 0, match.start()), screen.rfind("\n", 0, match.start())) + 1
        before = screen[line_start:match.start()]
        assert "scanning" not in before and "MB" not in before, f"finding printed onto the bar: {before!r}"
    assert re.search(r"jitsec: 1 finding, 31 files", screen)
