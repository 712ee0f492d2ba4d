"""X.509 engine: client certificates issued and revoked per second, and leaked key → CRL latency.

1. issue: ``X509Engine.issue`` with ``--concurrency`` threads on CSRs made beforehand (the agent makes
   them, not the broker): CSR parse and signature check, key type, the ledger row (SQLite, key
   uniqueness), the certificate built, drafted and signed through the ``Signer``;
2. revoke: ``X509Engine.revoke`` of all of them: the ledger row, then the CRL rebuilt from every
   revoked unexpired serial, signed and written to its file (concurrent revocations share a rebuild);
3. peer, same run and same threads: ``cryptography`` alone signing the same certificate with the key
   object (no CSR checks, no ledger, no Signer) and, per revocation, a CRL of the serials so far
   signed in memory and never written: the floor the engine is compared against;
4. leak → CRL, through the broker's HTTP API (uvicorn on loopback, SQLite store): for each of
   ``--leaks`` certificates, the time from holding the leaked private key PEM to a CRL file that
   lists its serial: the fingerprint derived from the key (as the scanner does), ``POST /v1/leaks``,
   the revocation and the file write; p50/p99;
5. with ``--nginx`` (the server of ``scripts/services start nginx``, settings from the environment):
   the same, until nginx refuses a new handshake with the certificate; the engine runs the reload
   (``crl_reload_command``), so this is the whole loop: leak reported → TLS server refuses.

    python -m benchmarks.engine_x509                              # 400 certificates, 4 threads, 50 leaks
    python -m benchmarks.engine_x509 --count 2000 --concurrency 8 --leaks 200 --nginx
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from jitsec.broker.api.app import create_app
from jitsec.broker.client import BrokerClient
from jitsec.broker.config import parse_config
from jitsec.broker.engines.base import IssueRequest
from jitsec.broker.engines.x509 import CertificateHandle, X509Engine, X509EngineConfig
from jitsec.broker.leaks import LeakReport
from jitsec.broker.loopback import LoopbackServer
from jitsec.broker.runtime import build_broker
from jitsec.broker.sdk_x509 import KeyRing
from jitsec.scanner.key_fingerprint import derived_fingerprint

from jitsec.kernel.credential_format import CredentialKind, checksum

SCOPE = "x509:name:bench.internal"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))]


def timed(work: Callable[[int], object], count: int, concurrency: int) -> float:
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(work, range(count)))
    return count / (time.perf_counter() - started)


def engine_throughput(directory: Path, csrs: list[str], concurrency: int) -> dict[str, float]:
    engine = X509Engine(X509EngineConfig(state_dir=str(directory)))
    handles = [""] * len(csrs)

    def issue(i: int) -> None:
        handles[i] = engine.issue(IssueRequest(
            lease_id=f"lse_bench_{i}", agent="bench-agent", task_id="tsk_bench", task_name="bench",
            scopes=(SCOPE,), ttl_seconds=600, expires_at=time.time() + 600, public_key=csrs[i])).handle

    try:
        issue_rate = timed(issue, len(csrs), concurrency)
        revoke_rate = timed(lambda i: engine.revoke(handles[i]), len(csrs), concurrency)
    finally:
        engine.close()
    return {"issue_per_s": issue_rate, "revoke_per_s": revoke_rate}


def peer_throughput(csrs: list[str], concurrency: int) -> dict[str, float]:
    """``cryptography`` alone: sign with the key object; CRLs built in memory, never written."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "peer CA")])
    requests = [x509.load_pem_x509_csr(csr.encode()) for csr in csrs]
    entries: list[x509.RevokedCertificate] = []
    lock = threading.Lock()

    def issue(i: int) -> None:
        now = dt.datetime.now(dt.UTC)
        builder = x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(
            requests[i].public_key()).serial_number(x509.random_serial_number()).not_valid_before(
            now).not_valid_after(now + dt.timedelta(seconds=600))
        usage = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH])
        builder = builder.add_extension(usage, critical=False)
        builder.sign(ca_key, hashes.SHA256())

    def revoke(i: int) -> None:
        with lock:
            now = dt.datetime.now(dt.UTC)
            entries.append(x509.RevokedCertificateBuilder().serial_number(i + 1).revocation_date(now).build())
            builder = x509.CertificateRevocationListBuilder(
                issuer_name=ca_name, last_update=now, next_update=now + dt.timedelta(days=1),
                revoked_certificates=list(entries))
            builder.sign(ca_key, hashes.SHA256())

    return {"issue_per_s": timed(issue, len(csrs), concurrency),
            "revoke_per_s": timed(revoke, len(csrs), concurrency)}


def crl_lists(crl_file: Path) -> Callable[[int, Any], bool]:
    def dead(serial: int, cert: Any) -> bool:
        crl = x509.load_pem_x509_crl(crl_file.read_bytes())
        return crl.get_revoked_certificate_by_serial_number(serial) is not None

    return dead


def nginx_refuses(url: str, server_ca: str) -> Callable[[int, Any], bool]:
    def dead(serial: int, cert: Any) -> bool:
        try:
            with httpx.Client(verify=cert.ssl_context(cafile=server_ca), timeout=10) as http:
                return http.get(url).status_code != 200
        except httpx.TransportError:
            return True

    return dead


def leak_to_dead(directory: Path, leaks: int, engine: dict[str, Any],
                 dead: Callable[[int, Any], bool]) -> list[float]:
    """Seconds from a leaked key PEM in hand until ``dead(serial, certificate)``, one leak at a time."""
    key = CredentialKind.PRINCIPAL_KEY.prefix + "1" * 40 + checksum("1" * 40)
    scanner_key = CredentialKind.PRINCIPAL_KEY.prefix + "2" * 40 + checksum("2" * 40)

    def principal(name: str, role: str, secret: str) -> dict[str, str]:
        return {"name": name, "role": role, "key_sha256": hashlib.sha256(secret.encode()).hexdigest()}

    raw: dict[str, Any] = {
        "broker": {"store": f"sqlite:///{directory}/broker.db", "audit_key": "cd" * 32},
        "principals": [principal("orchestrator", "orchestrator", key),
                       principal("scanner", "scanner", scanner_key)],
        "engines": {"x509": engine},
        "policy": [{"agent": "bench-agent", "engines": {"x509": {"scopes": ["x509:name:*"]}}}],
    }
    broker = build_broker(parse_config(raw))
    http = LoopbackServer(create_app(broker)).start()
    latencies: list[float] = []
    try:
        orchestrator, scanner = BrokerClient(http.url, key=key), BrokerClient(http.url, key=scanner_key)
        for _ in range(leaks):
            started = orchestrator.start_task("bench-agent", "bench", [SCOPE], ttl_seconds=600)
            with BrokerClient(http.url).task(started.task_id, started.grant, handle_sigterm=False) as task:
                cert = task.client_certificate("x509", [SCOPE])
                leaked, lease_id = cert.private_key_pem(), cert.lease_id
                assert not dead(0, cert), "the certificate does not work before its leak"
                serial = int(CertificateHandle.decode(broker.store.get_lease(lease_id).handle).serial, 16)
                begin = time.perf_counter()
                fingerprint = derived_fingerprint(leaked)
                assert fingerprint is not None
                verdict = scanner.report_leaks([LeakReport(fingerprint, "bench", "private-key-pkcs8")])[0]
                while not dead(serial, cert):
                    assert time.perf_counter() - begin < 30, verdict
                    time.sleep(0.005)
                latencies.append(time.perf_counter() - begin)
    finally:
        http.stop()
        broker.close()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=400, help="certificates issued then revoked")
    parser.add_argument("--concurrency", type=int, default=4, help="threads")
    parser.add_argument("--leaks", type=int, default=50, help="leaked keys reported, one at a time")
    parser.add_argument("--nginx", action="store_true",
                        help="also until nginx refuses (needs the JITSEC_TEST_NGINX_* settings)")
    args = parser.parse_args()
    csrs = [KeyRing().new_csr() for _ in range(args.count)]
    with tempfile.TemporaryDirectory() as tmp:
        ours = engine_throughput(Path(tmp) / "engine", csrs, args.concurrency)
        peer = peer_throughput(csrs, args.concurrency)
        crl_dir = Path(tmp) / "leaks" / "ca"
        latencies = leak_to_dead(Path(tmp) / "leaks", args.leaks, {"state_dir": str(crl_dir)},
                                 crl_lists(crl_dir / "crl.pem"))
        refused: list[float] = []
        if args.nginx:
            nginx = {key: os.environ[f"JITSEC_TEST_NGINX_{key.upper()}"]
                     for key in ("url", "server_ca", "ca_dir", "crl", "reload")}
            engine = {"state_dir": nginx["ca_dir"], "crl_path": nginx["crl"],
                      "crl_reload_command": [nginx["reload"]]}
            refused = leak_to_dead(Path(tmp) / "nginx", args.leaks, engine,
                                   nginx_refuses(nginx["url"], nginx["server_ca"]))
    print(f"X.509 engine, {args.count} certificates, {args.concurrency} threads "
          "(peer: cryptography alone, nothing checked, recorded or written)")
    for what in ("issue", "revoke"):
        mine, floor = ours[f"{what}_per_s"], peer[f"{what}_per_s"]
        print(f"  {what:<6} : {mine:8.1f}/s   peer {floor:8.1f}/s   ({mine / floor:.2f}x the peer)")
    p50, p99 = percentile(latencies, 0.5) * 1000, percentile(latencies, 0.99) * 1000
    print(f"leaked key → serial in the CRL file, {len(latencies)} leaks via HTTP:")
    print(f"  p50 {p50:7.1f} ms   p99 {p99:7.1f} ms   mean {statistics.fmean(latencies) * 1000:7.1f} ms")
    if refused:
        p50, p99 = percentile(refused, 0.5) * 1000, percentile(refused, 0.99) * 1000
        print(f"leaked key → nginx refuses the certificate (reload by the engine), {len(refused)} leaks:")
        print(f"  p50 {p50:7.1f} ms   p99 {p99:7.1f} ms   max {max(refused) * 1000:7.1f} ms")


if __name__ == "__main__":
    main()
