"""The sshd started by scripts/services: loopback only, its host key as printed, public key logins
only (no password, no authorized_keys), and ``status`` prints the same settings."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.sshd

ROOT = Path(__file__).resolve().parents[2]


def test_sshd_shows_the_printed_host_key_and_offers_public_key_logins_only(sshd: dict[str, str]) -> None:
    assert sshd["host"] == "127.0.0.1"
    scanned = subprocess.run(["ssh-keyscan", "-T", "5", "-t", "ed25519", "-p", sshd["port"], sshd["host"]],
                             capture_output=True, text=True, timeout=30, check=False).stdout
    assert Path(sshd["host_key"]).read_text().split()[1] in scanned
    probe = subprocess.run(
        ["ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
         "-o", "UserKnownHostsFile=/dev/null", "-o", "PreferredAuthentications=none", "-p", sshd["port"],
         f"{sshd['user']}@{sshd['host']}", "true"], capture_output=True, text=True, timeout=30, check=False)
    assert probe.returncode == 255
    assert "Permission denied (publickey)" in probe.stderr  # the only method the server offers


def test_status_prints_the_settings_the_tests_read(sshd: dict[str, str]) -> None:
    done = subprocess.run([str(ROOT / "scripts" / "services"), "status", "sshd"], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    printed = dict(line.split("=", 1) for line in done.stdout.splitlines())
    assert printed == {f"JITSEC_TEST_SSHD_{key.upper()}": value for key, value in sshd.items()}
