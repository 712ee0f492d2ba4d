"""`jitsec demo --json` as a user runs it: a subprocess, no external service."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_demo_json_revokes_the_leaked_token_and_leaves_no_secret(tmp_path: Path) -> None:
    keep = tmp_path / "demo"
    result = subprocess.run(
        [sys.executable, "-c", "from jitsec.cli import main; main()", "demo", "--json", "--keep", str(keep)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout)
    assert summary["revoked"] is True
    assert summary["introspection_active_before"] is True and summary["introspection_active_after"] is False
    assert summary["latency_ms"] > 0 and summary["lease_id"].startswith("lse_")
    assert len(summary["fingerprint"]) == 64
    assert summary["incidents"] == 1 and summary["incident"]["action"] == "revoked"
    kinds = [event["kind"] for event in summary["audit"]]
    assert "leak" in kinds and "revoke" in kinds
    # the token is in the agent's log (that is the leak) and nowhere else: not in the output, the
    # broker's database, the spools or the outbox
    log_line = (keep / "agent.log").read_text()
    token = log_line.split("Bearer ")[1].strip()
    assert token.startswith("jit_")
    assert token not in result.stdout and token not in result.stderr
    for path in keep.rglob("*"):
        if path.is_file() and path.name != "agent.log":
            assert token.encode() not in path.read_bytes(), path
