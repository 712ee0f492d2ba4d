"""A small real agent for tests 8.5 and 8.6, run as its own process (``python -m jitsec.conformance.agent``).

It reads one job (JSON, one line) from stdin: the broker URL, its task id and single-use grant. Then it
does what an agent does through the SDK: redeem the grant, ask for each secret, use a PostgreSQL
secret for a query, optionally rotate a token mid-task, write a work product and a log in its working
directory, and complete the task. It tells the suite (over its stdout pipe, never a file) what it held,
so the suite knows what must be dead and absent afterwards. Then it stays alive and idle until stdin
says ``exit``: the attacker of test 8.6 inspects a live process that has finished its task.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

from jitsec.broker.client import BrokerClient, Secret

WORK_PRODUCT = "work-product.txt"
AGENT_LOG = "agent.log"


def _use_postgres(secret: Secret, statement: str) -> int:
    import psycopg  # noqa: PLC0415 - only agents that hold a database secret need it

    details = secret.details
    with psycopg.connect(
        host=details.get("host", "localhost"),
        port=details.get("port", "5432"),
        dbname=details.get("database", ""),
        user=secret.username or "",
        password=secret.value,
        connect_timeout=5,
        autocommit=True,
    ) as conn:
        row = conn.execute(statement).fetchone()
    return int(row[0]) if row else 0


def _held(secret: Secret) -> dict[str, Any]:
    return {
        "lease_id": secret.lease_id,
        "engine": secret.engine,
        "value": secret.reveal(),
        "username": secret.username,
        "replaced": [],
    }


def run(job: dict[str, Any], say: Any) -> None:
    logging.basicConfig(
        filename=AGENT_LOG, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    log = logging.getLogger("conformance-agent")
    client = BrokerClient(job["broker"])
    with client.task(job["task_id"], job.pop("grant")) as task:
        report: dict[str, Any] = {"task_token": task.token, "secrets": []}
        notes = []
        for request in job["requests"]:
            secret = task.secret(request["engine"], request["scopes"], request.get("ttl_seconds"))
            log.info("got %r", secret)  # repr is redacted by the SDK
            held = _held(secret)
            if request.get("statement"):
                rows = _use_postgres(secret, request["statement"])
                notes.append(f"{secret.lease_id}: query returned {rows}")
            if request.get("rotate"):
                before = held["lease_id"], held["value"]
                secret.rotate()
                log.info("rotated to %r", secret)
                held.update(lease_id=secret.lease_id, value=secret.reveal())
                held["replaced"].append({"lease_id": before[0], "value": before[1]})
            report["secrets"].append(held)
            notes.append(f"{secret.lease_id}: {secret!r}")
        Path(WORK_PRODUCT).write_text("\n".join(notes) + "\n", encoding="utf-8")
        say(report)
    say({"state": "completed"})


def main() -> int:
    def say(message: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()

    line = sys.stdin.readline()
    try:
        run(json.loads(line), say)
    except Exception as error:  # report the kind only: a message might carry what the agent held
        say({"error": type(error).__name__})
        return 1
    sys.stdin.readline()  # idle until told to exit (the attacker looks now)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
