"""Kafka engine: credentials issued and revoked per second, and revoke → "login refused" latency.

Against the real Kafka's SASL listener (``--bootstrap``, default ``$JITSEC_TEST_KAFKA_SASL_BOOTSTRAP``,
admin ``$JITSEC_TEST_KAFKA_SASL_USERNAME`` / ``…_PASSWORD`` from ``scripts/services``):

1. issue: ``KafkaEngine.issue`` from ``--concurrency`` threads (ACLs for two scopes and a
   SCRAM-SHA-512 credential, both through the admin API, waited for);
2. revoke: ``KafkaEngine.revoke`` of all of them (credential deleted, ACLs deleted by principal);
3. peer, same run and same threads: the bare minimum Kafka's admin API needs for a login, one
   ``AlterUserScramCredentials`` upsertion per user (no ACLs), then one deletion per user;
4. batched peer: the same upsertions and deletions sent ``--batch`` users per request, the rate the
   admin API reaches when the round trip is shared (the engine issues one lease per request);
5. the PBKDF2 floor: ``hashlib.pbkdf2_hmac("sha512", …, iterations)`` alone from the same threads.
   SCRAM has the client send the salted password, so every credential costs one PBKDF2 run at
   Kafka's minimum of 4096 iterations wherever it is computed (librdkafka does it on its one
   background thread); this is the most any client could issue on this machine;
6. latency: for ``--probes`` leases, the time from calling ``revoke`` until a fresh SCRAM login with
   the lease's password is refused, p50 and max;
7. the leak loop, for ``--leaks`` leases of an embedded broker (HTTP on loopback, SQLite store) with
   a file-tailing scanner (10 ms poll): from appending the password to a log line until a fresh login
   with it is refused. Both latencies include the refused login itself (~300 ms here: the client's
   SCRAM exchange and Kafka's delay on failed authentication).

    python -m benchmarks.engine_kafka                          # 400 credentials, 8 threads
    python -m benchmarks.engine_kafka --count 2000 --concurrency 16
"""

from __future__ import annotations

import argparse
import hashlib
import os
import secrets
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaException
from confluent_kafka.admin import (
    AdminClient,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)
from jitsec.broker.engines.base import IssuedCredential, IssueRequest
from jitsec.broker.engines.kafka import KafkaEngine, KafkaEngineConfig

from jitsec.kernel.credential_format import CredentialKind, mint
from jitsec.testing import AGENT, EmbeddedBroker, LoopScanner

PREFIX = "jitbench_"
SCOPES = ("kafka:topic:jitsec-bench-orders:READ", "kafka:group:jitsec-bench")


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:8.1f}/s  ({count} in {seconds:.2f}s)"


def timed_pool(work: Callable[[int], Any], count: int, concurrency: int) -> tuple[float, list[Any]]:
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(work, range(count)))
    return time.perf_counter() - started, results


def engine_rates(engine: KafkaEngine, count: int, concurrency: int) -> tuple[float, float]:
    def issue(index: int) -> IssuedCredential:
        return engine.issue(IssueRequest(lease_id=f"bench-{uuid.uuid4().hex}", agent="bench-agent",
                                         task_id=f"task-{index}", task_name="bench", scopes=SCOPES,
                                         ttl_seconds=300, expires_at=time.time() + 300))

    issue_seconds, issued = timed_pool(issue, count, concurrency)
    revoke_seconds, _ = timed_pool(lambda i: engine.revoke(issued[i].handle), count, concurrency)
    print(f"engine issue    {rate(count, issue_seconds)}")
    print(f"engine revoke   {rate(count, revoke_seconds)}")
    return count / issue_seconds, count / revoke_seconds


def peer_rates(admin: AdminClient, count: int, concurrency: int, iterations: int, batch: int) -> None:
    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, iterations)
    names = [f"{PREFIX}peer_{uuid.uuid4().hex[:12]}" for _ in range(count)]

    def upsert(group: Sequence[str]) -> None:
        alterations = [UserScramCredentialUpsertion(name, info, mint(CredentialKind.KAFKA_PASSWORD).encode(),
                                                    secrets.token_bytes(32)) for name in group]
        for future in admin.alter_user_scram_credentials(alterations).values():
            future.result(timeout=60)

    def delete(group: Sequence[str]) -> None:
        deletions = [UserScramCredentialDeletion(name, ScramMechanism.SCRAM_SHA_512) for name in group]
        for future in admin.alter_user_scram_credentials(deletions).values():
            future.result(timeout=60)

    for label, size in (("peer", 1), (f"peer x{batch}", batch)):
        groups = [names[i:i + size] for i in range(0, count, size)]
        seconds, _ = timed_pool(lambda i, g=groups: upsert(g[i]), len(groups), concurrency)
        print(f"{label:<15} {rate(count, seconds)}  upsert only, no ACLs")
        seconds, _ = timed_pool(lambda i, g=groups: delete(g[i]), len(groups), concurrency)
        print(f"{label:<15} {rate(count, seconds)}  delete only")


def pbkdf2_floor(count: int, concurrency: int, iterations: int) -> None:
    salt = secrets.token_bytes(32)

    def derive(_: int) -> bytes:
        return hashlib.pbkdf2_hmac("sha512", mint(CredentialKind.KAFKA_PASSWORD).encode(), salt, iterations)

    seconds, _ = timed_pool(derive, count, concurrency)
    print(f"{'pbkdf2 floor':<15} {rate(count, seconds)}  hashlib PBKDF2-HMAC-SHA512 x{iterations} alone")


def login_refused(bootstrap: str, user: str, password: str) -> bool:
    errors: list[Any] = []
    consumer = Consumer({"bootstrap.servers": bootstrap, "security.protocol": "SASL_PLAINTEXT",
                         "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": user, "sasl.password": password,
                         "group.id": "jitsec-bench", "error_cb": errors.append, "log_level": 0})
    try:
        while True:
            try:
                consumer.list_topics(timeout=0.05)
                return False
            except KafkaException:
                consumer.poll(0.01)
                if errors:
                    return any(e.name() == "_AUTHENTICATION" for e in errors)
    finally:
        consumer.close()


def revoke_latency(engine: KafkaEngine, bootstrap: str, probes: int) -> None:
    latencies: list[float] = []
    for index in range(probes):
        credential = engine.issue(IssueRequest(lease_id=f"probe-{uuid.uuid4().hex}", agent="bench-agent",
                                               task_id=f"probe-{index}", task_name="bench", scopes=SCOPES,
                                               ttl_seconds=300, expires_at=time.time() + 300))
        assert credential.username is not None
        assert not login_refused(bootstrap, credential.username, credential.secret), "fresh login refused"
        started = time.perf_counter()
        engine.revoke(credential.handle)
        while not login_refused(bootstrap, credential.username, credential.secret):
            time.sleep(0.005)
        latencies.append(time.perf_counter() - started)
    print(f"revoke → login refused  p50 {statistics.median(latencies) * 1000:.0f} ms, "
          f"max {max(latencies) * 1000:.0f} ms over {probes} leases")


def leak_loop(bootstrap: str, username: str, password: str, leaks: int) -> None:
    latencies: list[float] = []
    with tempfile.TemporaryDirectory(prefix="jitsec-kafka-leak-") as tmp:
        directory = Path(tmp)
        os.environ["JITSEC_KAFKA_ADMIN_PASSWORD"] = password  # how the engine reads it: never the config
        broker = EmbeddedBroker(directory, engines={"kafka": {
            "bootstrap_servers": bootstrap, "admin_username": username, "user_prefix": PREFIX,
            "default_ttl_seconds": 300, "max_ttl_seconds": 900}},
            policy_engines={"kafka": {"scopes": list(SCOPES)}}).start()
        log = directory / "worker.log"
        log.write_text("")
        loop = LoopScanner(log, broker.url, broker.keys["scanner"], directory / "state").start()
        try:
            service = broker.broker.service
            for _ in range(leaks):
                started = service.start_task("orchestrator", AGENT, "bench", list(SCOPES), 600)
                token = service.redeem(started.task.task_id, started.grant).token
                issued = service.issue(service.authenticate_task_token(token), "kafka", list(SCOPES))
                user = issued.lease.username or ""
                written = time.perf_counter()
                with log.open("a", encoding="utf-8") as out:
                    out.write(f"ERROR worker: sasl.username={user} sasl.password={issued.secret} failed\n")
                while not login_refused(bootstrap, user, issued.secret):
                    time.sleep(0.005)
                latencies.append(time.perf_counter() - written)
        finally:
            loop.close()
            broker.close()
    print(f"leak → login refused    p50 {statistics.median(latencies) * 1000:.0f} ms, "
          f"max {max(latencies) * 1000:.0f} ms over {leaks} leaks")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", default=os.environ.get("JITSEC_TEST_KAFKA_SASL_BOOTSTRAP", ""))
    parser.add_argument("--username", default=os.environ.get("JITSEC_TEST_KAFKA_SASL_USERNAME", "jitsec"))
    parser.add_argument("--count", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--probes", type=int, default=10)
    parser.add_argument("--leaks", type=int, default=10)
    parser.add_argument("--iterations", type=int, default=4096, help="SCRAM iterations (Kafka's minimum)")
    args = parser.parse_args(argv)
    password = os.environ.get("JITSEC_TEST_KAFKA_SASL_PASSWORD", "")
    if not args.bootstrap or not password:
        parser.error("needs --bootstrap and $JITSEC_TEST_KAFKA_SASL_PASSWORD "
                     "(eval \"$(scripts/services start kafka)\")")
    config = KafkaEngineConfig(bootstrap_servers=args.bootstrap, admin_username=args.username,
                               user_prefix=PREFIX, scram_iterations=args.iterations, timeout_seconds=60)
    engine = KafkaEngine(config, password)
    print(f"Kafka engine on {args.bootstrap}: {args.count} credentials, {args.concurrency} threads, "
          f"{len(SCOPES)} scopes each, SCRAM-SHA-512 x{args.iterations}")
    try:
        engine.reconcile([])  # leftovers of an interrupted run (older than the grace period)
        engine_rates(engine, args.count, args.concurrency)
        peer_rates(AdminClient(config.client_config(password)), args.count, args.concurrency,
                   args.iterations, args.batch)
        pbkdf2_floor(args.count, args.concurrency, args.iterations)
        revoke_latency(engine, args.bootstrap, args.probes)
        leak_loop(args.bootstrap, args.username, password, args.leaks)
    finally:
        engine.close()


if __name__ == "__main__":
    main()
