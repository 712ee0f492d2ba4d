"""A Kafka topic through the real daemon (`jitsec watch kafka://…`): every planted secret found, and
the records of each poll scanned in one pass (the batched path), not one stream per record."""

from __future__ import annotations

import json

import pytest

from jitsec.kernel.credential_format import mint

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def test_watch_reads_a_topic_through_the_one_pass_batched_path(
    kafka_bootstrap: str, kafka_tools, watch_env: dict[str, str], start_watch
) -> None:
    topic = kafka_tools.topic(2)
    secrets = [mint("jit_") for _ in range(6)]
    values = [json.dumps({"level": "info", "msg": f"request {n} served"}).encode() for n in range(400)]
    for index, secret in enumerate(secrets):
        values[index * 60 + 7] = json.dumps({"level": "debug", "auth": f"Bearer {secret}"}).encode()
    kafka_tools.produce(topic, values)

    address = f"kafka://{kafka_bootstrap}/{topic}?group=watch-batched"
    process, out, err = start_watch([address, "-f", "jsonl", "--exit-when-idle", "3"], watch_env)
    assert process.wait(timeout=120) == 1  # findings
    err.wait_for(r"stopped \(idle")
    found = [row for row in out.rows() if row.get("rule") == "broker-engine-token"]
    assert len(found) == len(secrets)
    assert not any(secret in line for secret in secrets for line in out.lines + err.lines)
    total = err.wait_for(r"stopped \(.*, (\d+) chunks")
    joined = err.wait_for(r"(\d+) standalone chunks \(records, documents\) scanned in (\d+) one-pass batches")
    chunks, passes = int(joined[1]), int(joined[2])
    assert chunks == int(total[1])  # every chunk (a poll's records of one partition) in a joined pass
    assert passes < len(values) / 10  # many records per pass: the batched path, not one scan per record
