"""An attacker's view of a compromised agent: its environment and its memory.

``environ`` reads ``/proc/<pid>/environ`` (what the process itself sees as ``/proc/self/environ``).
``dump_memory`` takes a core dump with ``gcore`` (gdb) when present, or pauses the process with
SIGSTOP and copies every readable mapping from ``/proc/<pid>/mem``. Both need the right to ptrace the
agent (same user, or root). The dump is deleted by the caller as soon as it has been searched.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from contextlib import suppress
from pathlib import Path

GCORE_TIMEOUT = 120.0
SKIPPED_MAPPINGS = ("[vvar]", "[vsyscall]", "[vvar_vclock]")


class DumpFailed(RuntimeError):
    """No memory image could be taken (the message says why)."""


def environ(pid: int) -> bytes:
    return Path(f"/proc/{pid}/environ").read_bytes()


def dump_memory(pid: int, directory: Path, method: str = "auto") -> tuple[Path, str]:
    """A memory image of ``pid`` in ``directory``, and the method used (``gcore`` or ``proc-mem``)."""
    directory.mkdir(parents=True, exist_ok=True)
    if method == "gcore" or (method == "auto" and shutil.which("gcore")):
        try:
            return _gcore(pid, directory), "gcore"
        except DumpFailed:
            if method == "gcore":
                raise
    return _proc_mem(pid, directory), "proc-mem"


def _gcore(pid: int, directory: Path) -> Path:
    gcore = shutil.which("gcore")
    if gcore is None:
        raise DumpFailed("gcore (gdb) is not installed")
    prefix = directory / "core"
    try:
        subprocess.run(
            [gcore, "-o", str(prefix), str(pid)], capture_output=True, timeout=GCORE_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        raise DumpFailed(f"gcore did not finish within {GCORE_TIMEOUT:g} s") from None
    core = directory / f"core.{pid}"
    if not core.exists() or core.stat().st_size == 0:
        raise DumpFailed("gcore wrote no core file (ptrace not permitted?)")
    return core


def _proc_mem(pid: int, directory: Path) -> Path:
    image = directory / f"mem.{pid}"
    try:
        os.kill(pid, signal.SIGSTOP)
    except OSError as error:
        raise DumpFailed(f"cannot pause the agent: {error.strerror}") from None
    try:
        maps = Path(f"/proc/{pid}/maps").read_text(encoding="ascii", errors="replace").splitlines()
        with open(f"/proc/{pid}/mem", "rb", buffering=0) as memory, image.open("wb") as out:
            for line in maps:
                fields = line.split()
                if len(fields) < 2 or not fields[1].startswith("r"):
                    continue
                if len(fields) >= 6 and fields[5] in SKIPPED_MAPPINGS:
                    continue
                start, end = (int(x, 16) for x in fields[0].split("-"))
                with suppress(OSError, OverflowError, ValueError):
                    memory.seek(start)
                    out.write(memory.read(end - start))
    except OSError as error:
        raise DumpFailed(f"cannot read the agent's memory: {error.strerror}") from None
    finally:
        with suppress(OSError):
            os.kill(pid, signal.SIGCONT)
    return image
