"""State files are their owner's only: the state directory 0700, every file in it 0600, also when an
older version left them world-readable."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from jitsec.connectors.checkpoints import CheckpointStore

from jitsec.kernel.private_files import private_file
from jitsec.response.options import ResponseOptions, build_response


def _others_can_read(path: Path) -> bool:
    return bool(stat.S_IMODE(path.stat().st_mode) & 0o077)


def test_the_leak_response_state_is_private(tmp_path: Path) -> None:
    state = tmp_path / "state"
    old_umask = os.umask(0o022)  # the usual default: files 0644, directories 0755
    try:
        options = ResponseOptions(alerts=(f"jsonl:{tmp_path / 'alerts.jsonl'}",), broker_url="http://127.0.0.1:9",
                                  broker_key="jitk_unused", state_dir=state)
        runtime = build_response(options, live_cache=False)  # spools, leak outbox, incident book
        runtime.close(0.1)
        CheckpointStore(state / "checkpoints").save("file:/var/log/app.log", {"offset": 1})
    finally:
        os.umask(old_umask)
    made = [state, *state.rglob("*")]
    assert len(made) > 3 and not [str(path) for path in made if _others_can_read(path)]


def test_a_file_left_world_readable_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "spool" / "old.sqlite"
    path.parent.mkdir()
    path.write_bytes(b"")
    path.chmod(0o644)
    private_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
