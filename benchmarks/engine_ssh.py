"""SSH engine: certificates issued and revoked per second, against OpenSSH's own tools in the same run,
and the leak loop (a certificate written to a watched log → scanner → broker → its serial in the KRL).

1. issue: ``SshEngine.issue`` with ``--concurrency`` threads (parse scopes, parse the agent's key,
   assemble and sign the certificate through the ``Signer``); peer: ``cryptography``'s
   ``SSHCertificateBuilder`` signing the same fields in process, and ``ssh-keygen -s`` per certificate
   for a sample (what a shell-script CA does);
2. revoke: ``SshEngine.revoke`` of every certificate (journal rewritten and fsynced, KRL rewritten);
   peer: ``ssh-keygen -k -u`` adding one serial per call to a KRL, for a sample;
3. leak loop (``--leaks N``): a served broker and the real scanner tailing a log; for each of N
   certificates, the time from appending it to the log until ``ssh-keygen -Q`` reports it REVOKED in
   the KRL file sshd reads (sshd reads that file on every login), p50/p99.

    python -m benchmarks.engine_ssh                        # 2000 certificates, 4 threads, 20 leaks
    python -m benchmarks.engine_ssh --count 5000 --concurrency 8 --leaks 50
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jitsec.broker.engines.base import IssueRequest
from jitsec.broker.engines.ssh import SshEngine, SshEngineConfig
from jitsec.broker.sdk_ssh import SshKeys

SCOPES = ("ssh:principal:deploy", "ssh:source:10.0.0.0/8")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))]


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f}/s"


def bench_engine(directory: Path, count: int, concurrency: int) -> None:
    engine = SshEngine(SshEngineConfig(ca_key=str(directory / "ca"), krl_file=str(directory / "revoked.krl")))
    public_keys = [SshKeys().new_public_key() for _ in range(count)]
    now = time.time()

    def issue(index: int) -> str:
        return engine.issue(IssueRequest(f"lse_{index}", "bench-agent", "tsk_bench", "bench", SCOPES, 600,
                                         now + 600, public_keys[index])).handle

    with ThreadPoolExecutor(concurrency) as pool:
        started = time.perf_counter()
        handles = list(pool.map(issue, range(count)))
        issued = time.perf_counter() - started
        started = time.perf_counter()
        outcomes = list(pool.map(engine.revoke, handles))
        revoked = time.perf_counter() - started
    assert len(set(outcomes)) == 1
    print(f"engine   issue {count} in {issued:.2f} s: {rate(count, issued)}   "
          f"revoke in {revoked:.2f} s: {rate(count, revoked)} (KRL of {count} serials at the end, "
          f"{(directory / 'revoked.krl').stat().st_size:,} bytes)")


def bench_cryptography(count: int) -> None:
    ca = Ed25519PrivateKey.generate()
    keys = [Ed25519PrivateKey.generate().public_key() for _ in range(count)]
    started = time.perf_counter()
    for index, key in enumerate(keys):
        (serialization.SSHCertificateBuilder().public_key(key).serial(index + 1)
         .type(serialization.SSHCertificateType.USER).key_id(f"bench {index}".encode())
         .valid_principals([b"deploy"]).valid_after(int(time.time()) - 60)
         .valid_before(int(time.time()) + 600)
         .add_critical_option(b"source-address", b"10.0.0.0/8").sign(ca))
    took = time.perf_counter() - started
    print(f"peer     cryptography SSHCertificateBuilder: {count} in {took:.2f} s: {rate(count, took)}")


def bench_ssh_keygen(directory: Path, count: int) -> None:
    ca = directory / "peer-ca"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(ca)], check=True)
    users = []
    for index in range(count):
        user = directory / f"user{index}"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(user)], check=True)
        users.append(user)
    started = time.perf_counter()
    for index, user in enumerate(users):
        subprocess.run(["ssh-keygen", "-q", "-s", str(ca), "-I", f"bench {index}", "-n", "deploy",
                        "-O", "source-address=10.0.0.0/8", "-z", str(index + 1), "-V", "+10m",
                        f"{user}.pub"], check=True)
    signed = time.perf_counter() - started
    krl, spec = directory / "peer.krl", directory / "spec"
    started = time.perf_counter()
    for index in range(count):
        spec.write_text(f"serial: {index + 1}\n")
        subprocess.run(["ssh-keygen", "-q", "-k", *(["-u"] if index else []), "-f", str(krl), "-s",
                        f"{ca}.pub", str(spec)], check=True, capture_output=True)
    updated = time.perf_counter() - started
    print(f"peer     ssh-keygen -s: {count} in {signed:.2f} s: {rate(count, signed)}   "
          f"ssh-keygen -k -u: {rate(count, updated)}")


def bench_leak_loop(directory: Path, leaks: int) -> None:
    from jitsec.broker.sdk_ssh import ssh_certificate  # noqa: PLC0415 - only this phase serves a broker
    from jitsec.scanner.ruleset import load_ruleset  # noqa: PLC0415

    from jitsec.testing import AGENT, EmbeddedBroker, LoopScanner  # noqa: PLC0415

    krl = directory / "loop.krl"
    engine = {"ca_key": str(directory / "loop-ca"), "krl_file": str(krl)}
    broker = EmbeddedBroker(directory, engines={"ssh": engine},
                            policy_engines={"ssh": {"scopes": ["ssh:principal:deploy"]}}).start()
    log = directory / "agent.log"
    log.write_text("")
    loop = LoopScanner(log, broker.url, broker.keys["scanner"], directory / "state", ruleset=load_ruleset(),
                       engine="python").start()
    latencies: list[float] = []
    try:
        started = broker.client("orchestrator").start_task(AGENT, "bench", ["ssh:principal:deploy"], 900)
        with broker.client().task(started.task_id, started.grant, handle_sigterm=False) as task:
            for _ in range(leaks):
                certificate = ssh_certificate(task, ["ssh:principal:deploy"]).identity().certificate
                (directory / "cert.pub").write_text(certificate + "\n")
                began = time.perf_counter()
                with log.open("a") as out:
                    out.write(f"DEBUG identity {certificate}\n")
                while subprocess.run(["ssh-keygen", "-Q", "-f", str(krl), str(directory / "cert.pub")],
                                     capture_output=True, check=False).returncode != 1:
                    if time.perf_counter() - began > 10:
                        raise SystemExit("a leaked certificate was not revoked within 10 s")
                latencies.append(time.perf_counter() - began)
    finally:
        loop.close()
        broker.close()
    print(f"leak     written → serial in the KRL: p50 {statistics.median(latencies) * 1000:.0f} ms, "
          f"p99 {percentile(latencies, 0.99) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms "
          f"({leaks} leaks)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=2000, help="certificates issued and revoked")
    parser.add_argument("--concurrency", type=int, default=4, help="threads calling the engine")
    parser.add_argument("--peer-sample", type=int, default=200, help="certificates for ssh-keygen")
    parser.add_argument("--leaks", type=int, default=20, help="leaked certificates timed (0: skip)")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; validity {timedelta(minutes=10)}")
    with tempfile.TemporaryDirectory(prefix="jitsec-bench-ssh-") as temporary:
        directory = Path(temporary)
        bench_engine(directory, args.count, args.concurrency)
        bench_cryptography(args.count)
        bench_ssh_keygen(directory, args.peer_sample)
        if args.leaks:
            bench_leak_loop(directory, args.leaks)


if __name__ == "__main__":
    main()
