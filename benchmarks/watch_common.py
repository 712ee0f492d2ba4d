"""What the two daemon benchmarks share: the real ``jitsec watch ADDRESS`` as a subprocess, checked to
have found every planted token, and the machine's load for the report."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any


def load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def watch(address: str, planted: int, idle: float, timeout: float) -> tuple[dict[str, Any], str]:
    """Run ``jitsec watch ADDRESS --exit-when-idle IDLE -f json``; its end-of-run summary and the lines
    it printed at exit. Exits the benchmark when the daemon failed or missed a planted token."""
    jitsec = shutil.which("jitsec", path=str(Path(sys.executable).parent)) or "jitsec"
    with tempfile.TemporaryDirectory() as tmp:
        output = Path(tmp) / "findings.json"
        command = [jitsec, "watch", address, "--exit-when-idle", str(idle), "-f", "json", "-o", str(output)]
        done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=timeout)
        if done.returncode not in (0, 1):
            raise SystemExit(f"jitsec watch failed ({done.returncode}): {done.stderr[-2000:]}")
        document = json.loads(output.read_text())
    found = {(f["path"], f["credential_lookup"]) for f in document["findings"] if f.get("credential_lookup")}
    if len(found) != planted:
        raise SystemExit(f"jitsec watch found {len(found)} of {planted} planted tokens: "
                         f"{done.stderr[-2000:]}")
    lines = [line for line in done.stderr.splitlines() if "stopped" in line or "one-pass" in line]
    return document["summary"], " / ".join(line.removeprefix("jitsec: ") for line in lines)
