"""Soak: an hour (by default) of mixed load on a real broker and a real ``jitsec watch``, reporting every
minute, then what was lost or repeated. Not part of the test suite.

    python -m benchmarks.soak                     # 60 minutes
    python -m benchmarks.soak --minutes 5         # a short run
    python -m benchmarks.soak --kafka 127.0.0.1:9092   # leaks also go through a Kafka topic

The load, all at once: agents start tasks and take short-lived tokens (the reaper expires them), half of
the tasks are completed early; every ``--leak-every`` seconds one live token is leaked, to a followed
log file (rotated every 30 s) or, with ``--kafka``, to a topic. ``jitsec watch`` follows both, reports
to the broker (which revokes the lease) and alerts a webhook that goes down for 15 s in every 45.

Each minute: issues per second and their p50/p99 latency, leaks written and revoked, leak → revoked
p50/p99 (the broker's ``revoked_at`` minus the time the line was written), alerts received, and RSS
and open file descriptors of the broker and the watcher. At the end, after a drain: leaks never
revoked, leaks never alerted (lost) and leaks alerted more than once (duplicated); all should be 0.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from contextlib import closing
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
from jitsec.broker.config import load_config

from benchmarks.broker_common import broker_process, free_port, percentile, start_task, task_token

SCOPES = ["reports:read"]
FLAP_UP, FLAP_DOWN = 30.0, 15.0  # seconds the alert webhook is up, then down


class FlappingWebhook:
    """The alert sink: counts incidents by lease, and refuses every request (503) while it is down."""

    def __init__(self) -> None:
        self.by_lease: Counter[str] = Counter()
        self.port = free_port()
        self.began = time.monotonic()
        soak = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                up = soak.is_up()
                if up:
                    lease = json.loads(body).get("incident", {}).get("lease_id") or ""
                    soak.by_lease[lease] += 1
                self.send_response(200 if up else 503)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def is_up(self) -> bool:
        return (time.monotonic() - self.began) % (FLAP_UP + FLAP_DOWN) < FLAP_UP


class Load:
    """The agents and the leaker, on threads; every figure they record, under one lock."""

    def __init__(self, url: str, keys: dict[str, str], log: Path, kafka: tuple[str, str] | None) -> None:
        self.url, self.keys, self.log, self.kafka = url, keys, log, kafka
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.issue_latencies: list[float] = []
        self.issued = self.completed = 0
        self.leaked: dict[str, float] = {}  # lease id -> wall time the leak was written
        self.rotations = 0

    def agent(self) -> None:
        client = httpx.Client(base_url=self.url, timeout=30)
        tasks = 0
        while not self.stop.is_set():
            task_id, token = start_task(self.url, self.keys, SCOPES)
            headers = {"Authorization": f"Bearer {token}"}
            for n in range(20):
                began = time.perf_counter()
                response = client.post("/v1/secrets", headers=headers,
                                       json={"engine": "token", "scopes": SCOPES, "ttl_seconds": 5 + n})
                with self.lock:
                    self.issue_latencies.append(time.perf_counter() - began)
                    self.issued += response.status_code == 201
            tasks += 1
            if tasks % 2:
                done = client.post(f"/v1/tasks/{task_id}/complete",
                                   headers={"Authorization": f"Bearer {self.keys['orchestrator']}"})
                with self.lock:
                    self.completed += done.status_code == 200
            self.stop.wait(0.05)

    def leaker(self, every: float) -> None:
        client = httpx.Client(base_url=self.url, timeout=30)
        producer = None
        if self.kafka is not None:
            from kafka import KafkaProducer  # noqa: PLC0415 - only with --kafka

            producer = KafkaProducer(bootstrap_servers=self.kafka[0], acks="all", linger_ms=5)
        count, rotated_at = 0, time.monotonic()
        while not self.stop.wait(every):
            token = task_token(self.url, self.keys, SCOPES)
            secret = client.post("/v1/secrets", headers={"Authorization": f"Bearer {token}"},
                                 json={"engine": "token", "scopes": SCOPES, "ttl_seconds": 600}).json()
            line = f"{time.time():.3f} ERROR upstream refused, retrying with token={secret['secret']}\n"
            written = time.time()
            if producer is not None and count % 2:
                producer.send(self.kafka[1], line.encode())
                producer.flush()
            else:
                with self.log.open("a") as handle:
                    handle.write(line)
            with self.lock:
                self.leaked[secret["lease_id"]] = written
            count += 1
            if time.monotonic() - rotated_at > 30:  # rotation by rename, as logrotate does
                self.log.rename(self.log.with_suffix(f".{self.rotations}"))
                self.log.touch()
                self.rotations += 1
                rotated_at = time.monotonic()


def process_figures(pid: int) -> dict[str, int]:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        rss = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
        return {"rss_mb": rss // 1024, "fds": len(os.listdir(f"/proc/{pid}/fd"))}
    except (OSError, StopIteration):
        return {"rss_mb": -1, "fds": -1}


def revoked_at(database: str, leases: list[str]) -> dict[str, float]:
    """Revocation time of each leaked lease that is revoked, read from the broker's SQLite store."""
    if not leases:
        return {}
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        marks = ",".join("?" * len(leases))
        rows = db.execute(f"SELECT lease_id, revoked_at FROM leases WHERE lease_id IN ({marks}) "  # noqa: S608
                          "AND revoked_at IS NOT NULL", leases).fetchall()
    return {lease: at for lease, at in rows}


def report(load: Load, sink: FlappingWebhook, database: str, pids: dict[str, int], *,
           since: tuple[int, float], minute: int) -> tuple[int, float]:
    with load.lock:
        latencies, load.issue_latencies = load.issue_latencies, []
        issued, leaked = load.issued, dict(load.leaked)
    revoked = revoked_at(database, list(leaked))
    delays = [revoked[lease] - leaked[lease] for lease in revoked]
    now = time.monotonic()
    figures: dict[str, object] = {
        "minute": minute,
        "issues_per_s": round((issued - since[0]) / (now - since[1])),
        "issue_p50_ms": round(percentile(latencies, 50) * 1e3, 1),
        "issue_p99_ms": round(percentile(latencies, 99) * 1e3, 1),
        "completed": load.completed, "leaks": len(leaked), "leaks_revoked": len(revoked),
        "leak_to_revoked_p50_ms": round(percentile(delays, 50) * 1e3, 1),
        "leak_to_revoked_p99_ms": round(percentile(delays, 99) * 1e3, 1),
        "alerts": sum(sink.by_lease.values()), "sink_up": sink.is_up(), "rotations": load.rotations,
    }
    for name, pid in pids.items():
        figures.update({f"{name}_{key}": value for key, value in process_figures(pid).items()})
    print(json.dumps(figures), flush=True)
    return issued, now


def kafka_topic(bootstrap: str) -> str:
    """A new topic, returned once its partitions are visible (a group joining earlier gets none)."""
    from kafka import KafkaConsumer  # noqa: PLC0415 - only with --kafka
    from kafka.admin import KafkaAdminClient, NewTopic  # noqa: PLC0415

    name = f"jitsec-soak-{uuid.uuid4().hex[:8]}"
    with closing(KafkaAdminClient(bootstrap_servers=bootstrap)) as admin:
        admin.create_topics([NewTopic(name, num_partitions=2, replication_factor=1)])
    with closing(KafkaConsumer(bootstrap_servers=bootstrap)) as probe:
        while len(probe.partitions_for_topic(name) or ()) < 2:
            time.sleep(0.1)
    return name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--agents", type=int, default=2, help="threads issuing and completing")
    parser.add_argument("--leak-every", type=float, default=1.0, help="seconds between two leaks")
    parser.add_argument("--kafka", default=os.environ.get("JITSEC_TEST_KAFKA_BOOTSTRAP"),
                        help="HOST:PORT of a Kafka broker (default $JITSEC_TEST_KAFKA_BOOTSTRAP; "
                             "none: files only)")
    options = parser.parse_args()
    jitsec = shutil.which("jitsec", path=str(Path(sys.executable).parent)) or "jitsec"
    sink = FlappingWebhook()
    with broker_process() as (url, keys, config, broker_pid), tempfile.TemporaryDirectory() as tmp:
        database = load_config(config).store_url.removeprefix("sqlite://")
        log = Path(tmp) / "agent.log"
        log.touch()
        kafka = (options.kafka, kafka_topic(options.kafka)) if options.kafka else None
        sources = [str(log)] + ([f"kafka://{kafka[0]}/{kafka[1]}?group={kafka[1]}"] if kafka else [])
        env = {**os.environ, "JITSEC_BROKER_KEY": keys["scanner"], "JITSEC_STATE_DIR": f"{tmp}/state",
               "JITSEC_FINGERPRINT_KEY": "55" * 32}
        watcher = subprocess.Popen(
            [jitsec, "watch", *sources, "--broker", url, "--alert", f"webhook:http://127.0.0.1:{sink.port}/",
             "--checkpoint-dir", f"{tmp}/checkpoints", "-f", "jsonl", "-o", f"{tmp}/findings.jsonl"],
            env=env, stderr=(Path(tmp) / "watch.err").open("w"))
        load = Load(url, keys, log, kafka)
        threads = [threading.Thread(target=load.agent, daemon=True) for _ in range(options.agents)]
        threads.append(threading.Thread(target=load.leaker, args=(options.leak_every,), daemon=True))
        for thread in threads:
            thread.start()
        pids = {"broker": broker_pid, "watch": watcher.pid}
        since, ends = (0, time.monotonic()), time.monotonic() + options.minutes * 60
        minute = 0
        while time.monotonic() < ends:
            time.sleep(min(60.0, max(0.0, ends - time.monotonic())))
            minute += 1
            since = report(load, sink, database, pids, since=since, minute=minute)
        load.stop.set()
        for thread in threads:
            thread.join(timeout=60)
        drain_until = time.monotonic() + FLAP_UP + FLAP_DOWN + 30  # the sink comes back at least once
        while time.monotonic() < drain_until and (
                len(revoked_at(database, list(load.leaked))) < len(load.leaked)
                or any(sink.by_lease[lease] == 0 for lease in load.leaked)):
            time.sleep(1)
        time.sleep(5)  # room for a late duplicate
        watcher.terminate()
        watcher.wait(timeout=60)
        revoked = revoked_at(database, list(load.leaked))
        if len(revoked) < len(load.leaked):
            said = (Path(tmp) / "watch.err").read_text().splitlines()[-20:]
            print("jitsec watch said, last:\n" + "\n".join(said))
        print("soak end: " + json.dumps({
            "minutes": options.minutes, "issued": load.issued, "completed": load.completed,
            "leaks": len(load.leaked), "rotations": load.rotations,
            "never_revoked": sum(lease not in revoked for lease in load.leaked),
            "lost_alerts": sum(sink.by_lease[lease] == 0 for lease in load.leaked),
            "duplicated_alerts": sum(sink.by_lease[lease] > 1 for lease in load.leaked),
        }), flush=True)
    sink.server.shutdown()


if __name__ == "__main__":
    main()
