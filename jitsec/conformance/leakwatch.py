"""The leak target of test 8.7: plant a line into it, and (for CI and self-tests) a watcher to read it.

``plant`` appends one log line to a file, or produces it to a Kafka topic. ``Watcher`` runs
``jitsec watch SOURCE --broker URL`` as a subprocess with the scanner principal's key in
``JITSEC_BROKER_KEY`` (never on its command line), findings and alerts written as JSON lines into its
own directory, so the suite can see both.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jitsec.conformance.settings import LeakTarget
from jitsec.kernel.credential_format import live_lookup

WATCH_CODE = "from jitsec.cli import main; main()"
READY_TIMEOUT = 60.0


def leak_line(secret: str) -> str:
    """The kind of line agents really leak: a debug log of an outgoing request's headers."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return f"{stamp} DEBUG agent.http: GET /v1/reports headers={{'Authorization': 'Bearer {secret}'}}\n"


def plant(target: LeakTarget, line: str) -> float:
    """Write ``line`` to the target; the UNIX time at which it was durably handed over."""
    if target.kind == "file":
        assert target.path is not None
        with target.path.open("a", encoding="utf-8") as out:
            out.write(line)
            out.flush()
            os.fsync(out.fileno())
        return time.time()
    from kafka import KafkaProducer  # noqa: PLC0415 - kafka only for kafka targets

    producer = KafkaProducer(bootstrap_servers=target.bootstrap)
    try:
        producer.send(target.topic, line.encode("utf-8")).get(timeout=30)
        return time.time()
    finally:
        producer.close(5)


class Watcher:
    """``jitsec watch`` over the leak target, reporting to the broker as the scanner principal."""

    def __init__(
        self,
        target: LeakTarget,
        broker_url: str,
        scanner_key: str,
        directory: Path,
        group: str = "jitsec-conformance",
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.findings = directory / "findings.jsonl"
        self.alerts = directory / "alerts.jsonl"
        source = (
            str(target.path)
            if target.kind == "file"
            else f"kafka://{target.bootstrap}/{target.topic}?group={group}"
        )
        env = dict(os.environ)
        env.update(
            JITSEC_BROKER_KEY=scanner_key,
            JITSEC_HOME=str(directory / "home"),
            JITSEC_STATE_DIR=str(directory / "state"),
        )
        command = [
            sys.executable,
            "-c",
            WATCH_CODE,
            "watch",
            source,
            "--broker",
            broker_url,
            "--alert",
            f"jsonl:{self.alerts}",
            "-f",
            "jsonl",
            "-o",
            str(self.findings),
        ]
        self._log = (directory / "watch.log").open("wb")
        self._process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT, env=env)

    def is_running(self) -> bool:
        return self._process.poll() is None

    def findings_of(self, sha256: str) -> list[dict[str, Any]]:
        lookup = live_lookup(sha256)
        return [f for f in _json_lines(self.findings) if f.get("credential_lookup") == lookup]

    def incidents_of(self, lease_id: str) -> list[dict[str, Any]]:
        return [i for i in _json_lines(self.alerts) if i.get("lease_id") == lease_id]

    def wait_seen(self, sha256: str, timeout: float = READY_TIMEOUT) -> bool:
        """Whether a finding with this credential fingerprint appears (the watcher is reading)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.is_running():
            if self.findings_of(sha256):
                return True
            time.sleep(0.05)
        return bool(self.findings_of(sha256))

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(15)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(5)
        self._log.close()


def _json_lines(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    out = []
    for line in text.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue  # a line being written right now
    return out
