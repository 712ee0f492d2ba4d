"""`jitsec hook pre-commit|pre-push` with a broker: a leaked live token dies before the hook says no.

Real git repositories, the hook run as git runs it (a fresh process), a real broker on loopback HTTP
(the ``broker`` fixture), tokens issued through the SDK the way an agent gets them.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from jitsec.broker.client import Secret
from jitsec.broker.model import AuditKind, LeaseState
from jitsec.connectors.sinks.spool import Spool

from jitsec.testing import AGENT, EmbeddedBroker

pytestmark = pytest.mark.slow
HOOK_TIMEOUT = 120  # a guard against a hang, not a speed assertion


@pytest.fixture
def repo(tmp_path: Path, env: dict[str, str]) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    git(path, env, "init", "-q", "-b", "main")
    (path / "README").write_text("hello\n")
    git(path, env, "add", ".")
    git(path, env, "commit", "-q", "-m", "base")
    return path


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """No broker: the tests that want one add it (``with_broker``)."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("JITSEC_", "GIT_")) and k != "CI"}
    return {
        **inherited,
        "JITSEC_FINGERPRINT_KEY": "33" * 32,
        "JITSEC_HOME": str(tmp_path / "home"), "JITSEC_STATE_DIR": str(tmp_path / "state"),
        "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org",
        "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(tmp_path),
    }  # fmt: skip


def with_broker(env: dict[str, str], url: str, key: str) -> dict[str, str]:
    return {**env, "JITSEC_BROKER_URL": url, "JITSEC_BROKER_KEY": key}


def git(repo: Path, env: dict[str, str], *arguments: str) -> str:
    result = subprocess.run(["git", *arguments], cwd=repo, env=env, capture_output=True, text=True,
                            check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def run_hook(repo: Path, env: dict[str, str], *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["jitsec", "hook", *arguments], cwd=repo, env=env, capture_output=True, text=True,
                          check=False, timeout=HOOK_TIMEOUT)  # fmt: skip


@contextmanager
def agent_secrets(broker: EmbeddedBroker, count: int = 1) -> Iterator[list[Secret]]:
    """Live tokens of one open task, through the SDK: the orchestrator starts the task, the agent
    redeems the grant and asks for tokens. The task completes (revoking what is left) on exit, so
    assertions about leak revocation belong inside the block."""
    with broker.client("orchestrator") as orchestrator:
        started = orchestrator.start_task(AGENT, "report", ["reports:read"], 600)
    with broker.client() as client, client.task(started.task_id, started.grant, handle_sigterm=False) as task:
        yield [task.secret("token", ["reports:read"]) for _ in range(count)]


def is_active(broker: EmbeddedBroker, token: str) -> bool:
    with broker.client("resource") as resource:
        return bool(resource.introspect(token, "reports")["active"])


def leak_locations(broker: EmbeddedBroker, lease_id: str) -> list[str]:
    return [r.event.resource for r in broker.broker.store.audit_records()
            if r.event.kind is AuditKind.LEAK and r.event.lease_id == lease_id]  # fmt: skip


@pytest.fixture
def refusing_url() -> Iterator[str]:
    """A loopback port that refuses connections: bound, never listening (a broker that is down)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_pre_commit_revokes_a_staged_live_token_then_blocks(repo: Path, env, broker: EmbeddedBroker) -> None:
    with agent_secrets(broker, count=2) as (leaked, kept):
        token = leaked.value
        (repo / "settings.py").write_text(f"DEBUG = True\nTOKEN = '{token}'\n")
        git(repo, env, "add", "settings.py")
        result = run_hook(repo, with_broker(env, broker.url, broker.keys["scanner"]), "pre-commit")

        assert result.returncode == 1, result.stderr
        assert not is_active(broker, token)  # dead before the task ends
        assert is_active(broker, kept.value)  # only what leaked dies
        lease = broker.broker.service.get_lease(leaked.lease_id)
        assert lease.state is LeaseState.REVOKED and lease.revoke_reason == "leak"
        assert leak_locations(broker, leaked.lease_id) == ["settings.py:2"]
    [line] = [line for line in result.stderr.splitlines() if "settings.py:2:" in line]
    assert "broker-engine-token" in line and f"revoked by the broker (lease {leaked.lease_id})" in line
    assert "git commit --no-verify" in result.stderr
    assert token not in result.stdout + result.stderr


def test_pre_push_with_from_ref_revokes_live_and_reports_dead(repo: Path, env, broker) -> None:
    base = git(repo, env, "rev-parse", "HEAD")
    with agent_secrets(broker) as [finished]:
        dead = finished.value
    assert not is_active(broker, dead)  # its task completed: already dead before it leaks
    with agent_secrets(broker) as [live]:
        (repo / "deploy.env").write_text(f"REGION=eu\nOLD_TOKEN={dead}\nTOKEN={live.value}\n")
        git(repo, env, "add", ".")
        git(repo, env, "commit", "-q", "--no-verify", "-m", "deploy settings")
        commit = git(repo, env, "rev-parse", "HEAD")
        result = run_hook(repo, with_broker(env, broker.url, broker.keys["scanner"]),
                          "pre-push", "--from-ref", base)  # fmt: skip

        assert result.returncode == 1, result.stderr
        assert not is_active(broker, live.value)
        assert leak_locations(broker, live.lease_id) == [f"{commit[:12]}:deploy.env:3"]
        secrets = (dead, live.value)
    lines = {line.split()[0]: line for line in result.stderr.splitlines() if "deploy.env:" in line}
    assert "already dead" in lines[f"{commit[:12]}:deploy.env:2:11"]
    assert "revoked by the broker" in lines[f"{commit[:12]}:deploy.env:3:7"]
    assert "git push --no-verify" in result.stderr
    assert not any(secret in result.stdout + result.stderr for secret in secrets)


def test_without_a_broker_the_hook_only_blocks(repo: Path, env, broker: EmbeddedBroker) -> None:
    with agent_secrets(broker) as [leaked]:
        token = leaked.value
        (repo / "settings.py").write_text(f"TOKEN = '{token}'\n")
        git(repo, env, "add", ".")
        result = run_hook(repo, env, "pre-commit")
        assert result.returncode == 1
        assert is_active(broker, token)
    [line] = [line for line in result.stderr.splitlines() if "settings.py:1:" in line]
    assert re.fullmatch(r"  settings\.py:1:\d+  broker-engine-token  jit_\S+ chars\)", line)  # no verdict
    assert "broker" not in result.stderr.replace("broker-engine-token", "")
    assert token not in result.stdout + result.stderr
    assert not (Path(env["JITSEC_STATE_DIR"]) / "leak-outbox.sqlite").exists()


def test_without_a_broker_the_hook_imports_no_client_code(repo: Path, env) -> None:
    """The pre-commit fast path: no broker client, HTTP, Kafka or Elasticsearch client is loaded."""
    (repo / "app.py").write_text("print('hello')\n")
    git(repo, env, "add", ".")
    probe = (
        "import sys\n"
        "from jitsec.cli import main\n"
        "try:\n"
        "    main(['hook', 'pre-commit'])\n"
        "except SystemExit as exit:\n"
        "    clients = ('httpx', 'kafka', 'elasticsearch', 'jitsec.broker.client', 'jitsec.broker.service')\n"
        "    loaded = sorted(m for m in sys.modules if m.startswith(clients))\n"
        "    print(exit.code, loaded)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=repo, env=env, capture_output=True, text=True,
                            check=False, timeout=HOOK_TIMEOUT)  # fmt: skip
    assert result.stdout.strip() == "0 []", result.stdout + result.stderr


def test_a_broker_that_is_down_blocks_and_keeps_the_report(
    repo: Path, env, broker: EmbeddedBroker, refusing_url: str
) -> None:
    key = broker.keys["scanner"]
    with agent_secrets(broker) as [leaked]:
        token = leaked.value
        (repo / "settings.py").write_text(f"TOKEN = '{token}'\n")
        git(repo, env, "add", ".")
        down = run_hook(repo, with_broker(env, refusing_url, key), "pre-commit")

        assert down.returncode == 1, down.stderr
        assert is_active(broker, token)  # nobody was told yet
        [line] = [line for line in down.stderr.splitlines() if "settings.py:1:" in line]
        assert "broker unreachable" in line
        outbox = Spool(Path(env["JITSEC_STATE_DIR"]) / "leak-outbox.sqlite", lambda _: None, start=False)
        try:
            assert outbox.stats().pending == 1
        finally:
            outbox.close()
        assert token not in down.stdout + down.stderr

        # The next run with a broker delivers the kept report (and blocks the commit again).
        again = run_hook(repo, with_broker(env, broker.url, key), "pre-commit")
        assert again.returncode == 1, again.stderr
        assert not is_active(broker, token)
        assert "revoked by the broker" in again.stderr


def test_a_response_option_on_the_command_line_enables_the_response(repo: Path, env, broker) -> None:
    """``--broker`` given as an option (no $JITSEC_BROKER_URL) works as the variable does."""
    with agent_secrets(broker) as [leaked]:
        (repo / "settings.py").write_text(f"TOKEN = '{leaked.value}'\n")
        git(repo, env, "add", ".")
        result = run_hook(repo, {**env, "JITSEC_BROKER_KEY": broker.keys["scanner"]},
                          "pre-commit", "--broker", broker.url)  # fmt: skip
        assert result.returncode == 1, result.stderr
        assert not is_active(broker, leaked.value)


def test_an_unknown_option_is_still_a_usage_error(repo: Path, env) -> None:
    result = run_hook(repo, env, "pre-commit", "--brokr", "http://127.0.0.1:1")
    assert result.returncode == 2 and "--brokr" in result.stderr

