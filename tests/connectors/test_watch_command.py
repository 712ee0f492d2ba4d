"""`jitsec watch` as users run it: a real subprocess, real files, real signals, real HTTP."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from jitsec.kernel.credential_format import mint

pytestmark = pytest.mark.slow


@pytest.fixture
def env(watch_env: dict[str, str]) -> dict[str, str]:
    return watch_env


def append(path: Path, text: str) -> None:
    with path.open("a") as handle:
        handle.write(text)


def test_sigterm_commits_checkpoints_and_a_restart_neither_skips_nor_repeats(
    tmp_path: Path, env, start_watch
) -> None:
    log = tmp_path / "app.log"
    first_secret, second_secret = mint("jit_"), mint("jit_")
    log.write_text("boot\n")
    arguments = [str(log), "-f", "jsonl", "--checkpoint-dir", str(tmp_path / "ck")]
    process, out, err = start_watch(arguments, env)
    err.wait_for("watching 1 source")
    append(log, f"login ok token={first_secret}\n")
    out.wait_for("broker-engine-token")
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0  # a supervisor's stop is clean: the findings were alerted
    err.wait_for(r"stopped \(SIGTERM\): 1 finding")
    first_rows = [row for row in out.rows() if row["rule"] == "broker-engine-token"]
    assert [row["line"] for row in first_rows] == [2]
    assert first_secret not in "".join(out.lines + err.lines)

    append(log, f"later token={second_secret}\n")  # written while the watcher was down
    again, out2, err2 = start_watch([*arguments, "--exit-when-idle", "0.5"], env)
    assert again.wait(timeout=60) == 1
    second_rows = [row for row in out2.rows() if row["rule"] == "broker-engine-token"]
    assert [row["line"] for row in second_rows] == [3]
    assert second_secret not in "".join(out2.lines + err2.lines)


def test_stdin_is_followed_line_by_line(tmp_path: Path, env, start_watch) -> None:
    process, out, err = start_watch(["-", "-f", "jsonl"], env, stdin=subprocess.PIPE)
    err.wait_for("watching 1 source")
    assert process.stdin is not None
    process.stdin.write(f"pod log line with {mint('jitt_')}\n")
    process.stdin.flush()
    match = out.wait_for('"rule":"broker-task-token"|"rule":"broker-engine-token"')
    assert match is not None
    assert process.poll() is None  # still following: stdin is open
    process.stdin.close()
    assert process.wait(timeout=30) == 1


def test_clean_input_exits_zero_when_idle(tmp_path: Path, env, start_watch) -> None:
    log = tmp_path / "quiet.log"
    log.write_text("nothing to see\n")
    process, _, err = start_watch([str(log), "--exit-when-idle", "0.5"], env)
    assert process.wait(timeout=60) == 0
    err.wait_for(r"stopped \(idle for 0.5s\): 0 finding")


def test_a_bad_daemon_config_is_exit_2(tmp_path: Path, env, start_watch) -> None:
    config = tmp_path / "daemon.toml"
    config.write_text("[watch]\nsources = 'not a list'\n")
    process, _, err = start_watch(["--config", str(config)], env)
    assert process.wait(timeout=60) == 2
    assert any(str(config) in line or "sources" in line for line in err.lines)


def test_bad_source_address_is_exit_2(tmp_path: Path, env, start_watch) -> None:
    process, _, err = start_watch([f"git:{tmp_path / 'no-repo'}"], env)
    assert process.wait(timeout=60) == 2
    err.wait_for("not a git repository")


def test_daemon_config_serves_health_and_metrics_and_alerts(tmp_path: Path, env, start_watch) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    incidents = tmp_path / "incidents.jsonl"
    config = tmp_path / "jitsec.toml"
    config.write_text(
        f'sources = ["{logs}"]\n'
        f'alerts = ["jsonl:{incidents}"]\n'
        'checkpoint_dir = "ck"\nstate_dir = "state"\n'
        '[http]\nlisten = "127.0.0.1:0"\n'
    )
    process, _, err = start_watch(["--config", str(config)], env)
    address = err.wait_for(r"health and metrics on (http://\S+/)").group(1)
    health = httpx.get(address + "healthz", timeout=10)
    assert health.status_code == 200 and health.json()["status"] == "ok"
    secret = mint("jit_")
    (logs / "new.log").write_text(f"DEBUG token={secret}\n")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (incidents.exists() and incidents.read_text()):
        time.sleep(0.05)
    metrics = httpx.get(address + "metrics", timeout=10).text
    assert re.search(r'jitsec_findings_total\{rule="broker-engine-token"\} 1\.0', metrics)
    assert re.search(r"jitsec_bytes_scanned_total\{source=\"[^\"]+\"\} \d+", metrics)
    assert "jitsec_incidents 1.0" in metrics
    incident = json.loads(incidents.read_text().splitlines()[0])
    assert secret not in incidents.read_text() and secret not in metrics
    assert incident
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == 0  # stopped by a signal: clean, whatever was found


def test_git_history_ends_when_idle_with_a_json_report(tmp_path: Path, env, start_watch) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git_env = {**env, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
               "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}
    for arguments in (["init", "-q"], ["commit", "-q", "--allow-empty", "-m", "start"]):
        subprocess.run(["git", "-C", str(repo), *arguments], check=True, env=git_env)
    (repo / "deploy.env").write_text(f"A=1\nTOKEN={mint('jit_')}\n")
    subprocess.run(["git", "-C", str(repo), "add", "."], check=True, env=git_env)
    subprocess.run(["git", "-C", str(repo), "commit", "-q", "-m", "leak"], check=True, env=git_env)
    (repo / "deploy.env").write_text("A=1\n")
    subprocess.run(["git", "-C", str(repo), "commit", "-q", "-am", "remove"], check=True, env=git_env)
    leak = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD~1"], capture_output=True, text=True,
                          check=True).stdout.strip()
    process, out, err = start_watch([f"git:{repo}", "-f", "json", "--exit-when-idle", "1"], env)
    assert process.wait(timeout=60) == 1
    err.wait_for(r"3 commits, 2 blobs scanned")
    document = json.loads("".join(out.lines))
    rows = [row for row in document["findings"] if row["rule"] == "broker-engine-token"]
    assert [(row["path"], row["line"]) for row in rows] == [(f"{leak[:12]}:deploy.env", 2)]


def test_a_secret_in_a_rotated_file_is_reported_at_once_when_the_old_one_ended_mid_line(
    tmp_path: Path, env, start_watch
) -> None:
    log = tmp_path / "app.log"
    log.write_text("boot\n" + "filler line that makes the old file longer than the new one\n" * 200
                   + "last line without newline")
    process, out, err = start_watch([str(log), "-f", "jsonl"], env)
    err.wait_for("watching 1 source")
    time.sleep(0.5)  # the tail has read the old file to its end
    log.rename(tmp_path / "app.log.1")
    secret = mint("jit_")
    log.write_text(f"token={secret}\n")
    row = out.wait_for('"rule": ?"broker-engine-token"', timeout=30)
    assert row is not None
    found = [r for r in out.rows() if r["rule"] == "broker-engine-token"]
    assert [(r["path"], r["line"]) for r in found] == [(str(log), 1)]  # once, in the new file, line 1
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)
    assert secret not in "".join(out.lines + err.lines)


def test_exclude_leaves_paths_of_a_followed_folder_out(tmp_path: Path, env, start_watch) -> None:
    root = tmp_path / "logs"
    (root / "archive").mkdir(parents=True)
    (root / "archive" / "old.log").write_text(f"token={mint('jit_')}\n")
    (root / "app.log").write_text("nothing to see\n")
    process, _, err = start_watch([str(root), "--exclude", "archive/**", "--exit-when-idle", "0.5"], env)
    assert process.wait(timeout=60) == 0
    err.wait_for(r"stopped \(idle for 0.5s\): 0 finding")
    process, _, err = start_watch([str(root), "--exclude", "a[b", "--exit-when-idle", "0.5"], env)
    assert process.wait(timeout=60) == 2
    err.wait_for("--exclude")
