"""A Kafka consumer (`jitsec watch kafka://…`) killed with SIGKILL in the middle of a topic: the next
process of the same group finds every planted secret the first one had not reported."""

from __future__ import annotations

import json

import pytest

from jitsec.kernel.credential_format import mint
from jitsec.testing import wait_until

pytestmark = pytest.mark.kafka

RECORDS = 20_000
PLANTED = [100 + 2_000 * n for n in range(10)]  # record numbers holding a secret


def found(rows: list[dict]) -> set[str]:
    return {row["fingerprint"] for row in rows if row.get("rule") == "broker-engine-token"}


def test_a_consumer_killed_mid_batch_misses_no_secret_after_restart(
    kafka_bootstrap: str, kafka_tools, watch_env: dict[str, str], start_watch
) -> None:
    topic = kafka_tools.topic(1)
    secrets = {number: mint("jit_") for number in PLANTED}
    values = [json.dumps({"level": "info", "msg": f"request {n} served",
                          **({"auth": f"Bearer {secrets[n]}"} if n in secrets else {})}).encode()
              for n in range(RECORDS)]
    kafka_tools.produce(topic, values)
    address = f"kafka://{kafka_bootstrap}/{topic}?group=faults-crash"

    first, out, _ = start_watch([address, "-f", "jsonl"], watch_env)
    assert wait_until(lambda: found(out.rows()), timeout=120)
    first.kill()  # SIGKILL as soon as the first secret shows: the batch it came in is not committed
    first.wait(timeout=30)
    before = found(out.rows())
    assert len(before) < len(PLANTED)  # the crash came before the end of the topic

    second, out, err = start_watch([address, "-f", "jsonl"], watch_env)
    # the group hands the partition over once the killed member's session has timed out
    assert wait_until(lambda: len(before | found(out.rows())) == len(PLANTED), timeout=120, interval=0.2)
    assert wait_until(lambda: kafka_tools.committed_total(topic, "faults-crash", 1) == RECORDS, timeout=60)
    second.terminate()
    assert second.wait(timeout=60) == 0
    assert not any(secret in line for secret in secrets.values() for line in out.lines + err.lines)
