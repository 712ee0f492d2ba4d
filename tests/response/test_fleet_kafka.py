"""The fleet's incidents at fleet scale, against the real Kafka and a real broker over loopback HTTP: two
`jitsec watch` daemons in one consumer group read a topic whose records carry planted secrets (each
repeated across records, partitions and both waves). The broker's ``GET /v1/incidents`` then shows one
incident per distinct secret whose sighting count is the number of records carrying it, although one
daemon is stopped (SIGTERM) mid-topic and the other takes its partitions over, and although a scanner
with no checkpoint then reads the whole topic again: every sighting counted once, none twice, none lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from jitsec.scanner.fingerprint import Fingerprinter

from jitsec.kernel.credential_format import mint
from jitsec.testing import EmbeddedBroker, wait_until
from tests.connectors.conftest import KafkaTools, Lines, StartWatch, kafka_tools, start_watch  # noqa: F401 - fixtures

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

PARTITIONS = 3
PER_PARTITION = (3000, 900)  # records per partition before, then after one daemon is stopped
CARRIERS = (12, 18)  # records per partition carrying a secret: one in 50 at the start of each wave
SECRETS = 6
RULE = "broker-engine-token"


def plant() -> list[list[list[int]]]:
    """``layout[wave][partition]``: the secret (an index) of each carrying record, in order."""
    return [[[(wave * 7 + partition * 5 + n * 11) % SECRETS for n in range(CARRIERS[wave])]
             for partition in range(PARTITIONS)] for wave in range(len(PER_PARTITION))]


def records(wave: int, carried: list[int], secrets: list[str]) -> list[bytes]:
    """One partition's records of one wave: JSON log lines, record 50k+25 carrying ``carried[k]``."""
    values = []
    for n in range(PER_PARTITION[wave]):
        line: dict[str, Any] = {"level": "info", "msg": f"wave {wave} request {n} served"}
        if n % 50 == 25 and n // 50 < len(carried):
            line = {"level": "debug", "auth": f"Bearer {secrets[carried[n // 50]]}"}
        values.append(json.dumps(line).encode())
    return values


def incidents(broker: EmbeddedBroker) -> dict[str, int]:
    """fingerprint → sighting count, every page of ``GET /v1/incidents`` as an analyst reads it."""
    counts: dict[str, int] = {}
    cursor = None
    with broker.client("analyst") as client:
        while True:
            page = client.incidents(cursor=cursor, limit=500)
            counts.update({item["fingerprint"]: item["sightings"] for item in page["incidents"]})
            if not (cursor := page["next_cursor"]):
                return counts


def holding(bootstrap: str, group: str) -> int:
    """How many members of ``group`` hold partitions now."""
    from kafka.admin import KafkaAdminClient  # noqa: PLC0415

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        if hasattr(admin, "describe_groups"):  # kafka-python 3: plain dicts
            found = admin.describe_groups([group])[group]["members"]
            return sum(1 for member in found
                       if (member["member_assignment"] or {}).get("assigned_partitions"))
        [described] = admin.describe_consumer_groups([group])  # kafka-python 2: named tuples
        return sum(1 for member in described.members if member.member_assignment.assignment)
    finally:
        admin.close()


def daemon_env(broker: EmbeddedBroker, tmp_path: Path, name: str) -> dict[str, str]:
    """A scanner as on a machine of its own (state directory, name); no team key, so it fingerprints
    with the fleet's key from the broker. The compiled-rules cache is the user's, shared with the other
    tests (a fresh one costs each process a rules compilation)."""
    env = {**os.environ, "JITSEC_BROKER_KEY": broker.keys["scanner"], "JITSEC_SCANNER_NAME": name,
           "JITSEC_STATE_DIR": str(tmp_path / name), "PYTHONUNBUFFERED": "1"}
    env.pop("JITSEC_FINGERPRINT_KEY", None)
    return env


def locations(out: Lines) -> list[str]:
    return [row["path"] for row in out.rows() if row.get("rule") == RULE]


def test_two_daemons_of_one_group_count_every_sighting_once_across_a_rebalance(
    tmp_path: Path, broker: EmbeddedBroker, kafka_bootstrap: str, kafka_tools: KafkaTools,  # noqa: F811
    start_watch: StartWatch,  # noqa: F811
) -> None:
    secrets = [mint("jit_") for _ in range(SECRETS)]
    layout = plant()
    carried = Counter(index for wave in layout for partition in wave for index in partition)
    assert sum(carried.values()) == PARTITIONS * sum(CARRIERS)
    for index in range(SECRETS):  # each secret in several partitions, before and after the stop
        places = {(wave, p) for wave in range(2) for p in range(PARTITIONS) if index in layout[wave][p]}
        assert len({p for _, p in places}) >= 2 and {wave for wave, _ in places} == {0, 1}
    topic = kafka_tools.topic(PARTITIONS)
    group = f"fleet-{topic[-12:]}"
    arguments = [f"kafka://{kafka_bootstrap}/{topic}?group={group}", "--broker", broker.url, "-f", "jsonl"]

    daemons = {name: start_watch(arguments, daemon_env(broker, tmp_path, name))
               for name in ("scanner-a", "scanner-b")}
    # both members of the group hold partitions before the first wave, so the stop falls mid-topic
    assert wait_until(lambda: holding(kafka_bootstrap, group) == 2, timeout=60, interval=0.2), \
        [err.lines for _, _, err in daemons.values()]
    for partition in range(PARTITIONS):
        kafka_tools.produce(topic, records(0, layout[0][partition], secrets), partition=partition)
    # whichever daemon reports first is stopped as a supervisor would, in the middle of the first wave
    assert wait_until(lambda: any(locations(out) for _, out, _ in daemons.values()), timeout=60,
                      interval=0.05), [err.lines for _, _, err in daemons.values()]
    stopped = next(name for name, (_, out, _) in daemons.items() if locations(out))
    (first, first_out, first_err), = (daemons[name] for name in daemons if name == stopped)
    (second, second_out, second_err), = (daemons[name] for name in daemons if name != stopped)
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=60) == 0, first_err.lines
    for partition in range(PARTITIONS):
        kafka_tools.produce(topic, records(1, layout[1][partition], secrets), partition=partition)

    total = PARTITIONS * sum(PER_PARTITION)
    if not wait_until(lambda: kafka_tools.committed_total(topic, group, PARTITIONS) == total,
                      timeout=90, interval=0.5):
        # A known, open liveness bug (docs/incidents.md, "Two daemons, one consumer group"): in about
        # one run in ten the daemon kept stops committing some partitions after the other left. It is
        # not a counting error; the counts below are checked whenever the group gets through.
        pytest.xfail(f"kept daemon stalled after the rebalance: committed "
                     f"{kafka_tools.committed(topic, group, PARTITIONS)} of {total}")
    fleet = Fingerprinter(broker.broker.service.incidents.fleet_key(), shared=True)
    expected = {fleet.fingerprint(secrets[index]): count for index, count in carried.items()}
    # the outboxes deliver in the background: wait for the last sighting, then check nothing is extra
    assert wait_until(lambda: incidents(broker) == expected, timeout=30, interval=0.2), incidents(broker)
    took_over = {location.split("/")[1].split("@")[0] for location in locations(second_out)}
    assert took_over == {str(p) for p in range(PARTITIONS)}  # the daemon kept read every partition

    # a scanner of a group with no committed offset reads the whole topic again: nothing changes
    again = subprocess.run(["jitsec", "scan", f"kafka://{kafka_bootstrap}/{topic}?group={group}-again",
                            "--broker", broker.url, "-f", "jsonl"],
                           env=daemon_env(broker, tmp_path, "scanner-c"), capture_output=True, text=True,
                           timeout=90, check=False)
    assert again.returncode == 1 and again.stdout.count(RULE) == sum(carried.values()), again.stderr
    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=60) == 0, second_err.lines
    assert incidents(broker) == expected

    desk = broker.broker.service.incidents
    details = [desk.get(item.incident_id) for item in desk.list(limit=SECRETS + 1).items]
    reporters = {seen.scanner for detail in details if detail is not None for seen in detail.sightings}
    assert reporters == {"scanner-a", "scanner-b"}  # a sighting keeps its first reporter
    printed = [*first_out.lines, *first_err.lines, *second_out.lines, *second_err.lines, again.stdout,
               again.stderr]
    assert not any(secret in line for secret in secrets for line in printed)
    for stored in (tmp_path / "broker-dir").iterdir():
        assert not any(secret.encode() in stored.read_bytes() for secret in secrets)
