"""Two broker processes over one PostgreSQL store, many scanners sending overlapping sightings to both
at once: one incident per secret, every sighting counted once, one valid audit chain, one fleet key."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import tomli_w
from jitsec.broker.audit import verify
from jitsec.broker.client import BrokerClient
from jitsec.broker.keys import key_hash
from jitsec.broker.store.postgres import PostgresStore

from jitsec.kernel.credential_format import checksum
from jitsec.kernel.records import Confidence, ResponseAction, Severity
from jitsec.kernel.sightings import Sighting, sighting_id
from tests.broker_postgres.test_postgres_broker import BROKER_PROCESS, free_port

pytestmark = pytest.mark.postgres

SCANNER_KEY = "jitk_" + "1" * 40 + checksum("1" * 40)
ANALYST_KEY = "jitk_" + "2" * 40 + checksum("2" * 40)
AUDIT_KEY = "cd" * 32
SECRETS, PLACES = 7, 40


def a_sighting(secret: int, place: int) -> Sighting:
    fingerprint = f"hmac-sha256:{secret:064x}"
    location = f"kafka:app-logs/{place % 4}@{place}"
    return Sighting(sighting_id(fingerprint, "kafka", location, ""), fingerprint, "", "github-pat",
                    "GitHub token", Severity.HIGH, Confidence.STRUCTURAL, "ghp_…(40 chars)", location,
                    "kafka", 1_800_000_000.0 + place, f"watch-{place % 2}", f"host-{place % 2}",
                    ResponseAction.ALERT_ONLY)


def test_two_brokers_over_one_database_make_one_incident_per_secret_counting_each_sighting_once(
        fresh_database: str, as_url: Callable[[str], str], tmp_path: Path) -> None:
    config = {
        "broker": {"store": as_url(fresh_database), "audit_key": AUDIT_KEY},
        "principals": [{"name": "scanner", "role": "scanner", "key_sha256": key_hash(SCANNER_KEY)},
                       {"name": "analyst", "role": "analyst", "key_sha256": key_hash(ANALYST_KEY)}],
        "engines": {"token": {"default_ttl_seconds": 60, "max_ttl_seconds": 600}},
        "policy": [],
    }
    config_path = tmp_path / "broker.toml"
    config_path.write_text(tomli_w.dumps(config), encoding="utf-8")
    ports = [free_port(), free_port()]
    processes = [subprocess.Popen([sys.executable, str(BROKER_PROCESS), str(config_path), str(port)],
                                  stdout=subprocess.PIPE, text=True) for port in ports]
    try:
        for process in processes:
            assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        clients = [BrokerClient(f"http://127.0.0.1:{port}", key=SCANNER_KEY) for port in ports]
        everything = [a_sighting(secret, place) for place in range(PLACES) for secret in range(SECRETS)]
        batches = [everything[start:start + 20] for start in range(0, len(everything), 20)]

        def send(index: int) -> None:  # every batch reaches both brokers, in opposite orders
            clients[index % 2].report_sightings(batches[index % len(batches)])

        with ThreadPoolExecutor(6) as pool:
            list(pool.map(send, range(2 * len(batches))))
        keys = {client.fingerprint_key() for client in clients}
        with BrokerClient(f"http://127.0.0.1:{ports[1]}", key=ANALYST_KEY) as analyst:
            listed = analyst.incidents(limit=100)["incidents"]
        for client in clients:
            client.close()
    finally:
        for process in processes:
            process.kill()
            process.wait(10)

    assert len(keys) == 1
    assert len(listed) == SECRETS
    assert sorted(i["sightings"] for i in listed) == [PLACES] * SECRETS
    store = PostgresStore(fresh_database, bytes.fromhex(AUDIT_KEY))
    records, after = [], 0
    while batch := store.audit_records(after, 1000):
        records.extend(batch)
        after = batch[-1].seq
    store.close()
    assert verify(bytes.fromhex(AUDIT_KEY), records).ok
    assert sum(1 for r in records if r.event.kind.value == "incident") == SECRETS * PLACES
