"""No plaintext secret in the store's files, the logs, the audit or an error: every secret issued in a
busy session (grants, task tokens, engine tokens, principal keys, rotations, failures) is searched for
verbatim, and anything of a broker credential's shape is flagged too."""

from __future__ import annotations

import json
import logging

import httpx
import pytest
import regex
from jitsec.broker.audit import record_to_dict
from jitsec.broker.client import BrokerAPIError
from jitsec.scanner.engine import Scanner
from jitsec.scanner.fingerprint import Fingerprinter
from jitsec.scanner.ruleset import load_ruleset

from jitsec.kernel.credential_format import is_valid
from jitsec.kernel.records import StreamOrigin

SHAPE = regex.compile(r"jit[a-z]*_[0-9A-Za-z]{46}")


def test_no_secret_reaches_store_logs_audit_or_errors(serve, env, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.WARNING, logger="httpx")  # the hostile caller's own client logs its URLs
    running = serve()
    issued: list[str] = list(env.keys.values())
    errors: list[str] = []
    orchestrator, resource = running.client("orchestrator"), running.client("resource")
    for n in range(5):
        started = orchestrator.start_task("demo-agent", f"task {n}", ["reports:read", "reports:write"])
        issued.append(started.grant)
        with running.client().task(started.task_id, started.grant) as task:
            issued.append(task.token)
            for _ in range(4):
                secret = task.secret("token", ["reports:read"])
                issued.append(secret.value)
                resource.introspect(secret.value, resource="reports-api")
            secret.rotate(grace_seconds=5)
            issued.append(secret.value)
            replay = (started.task_id, started.grant)
            for attempt in (
                lambda replay=replay: running.client().redeem(*replay),
                lambda: task.secret("token", ["payroll:read"]),
                lambda: task.secret("token", ["reports:read"], ttl_seconds=10**6),
                # a hostile caller puts secrets where scopes and names go: refused, never repeated
                lambda secret=secret: task.secret("token", [secret.value]),
                lambda: task.secret("token", [task.token]),
                lambda secret=secret: orchestrator.start_task("demo-agent", "t", [secret.value]),
                lambda secret=secret: orchestrator.start_task(secret.value, "t", ["reports:read"]),
            ):
                with pytest.raises(BrokerAPIError) as refused:
                    attempt()
                errors.append(str(refused.value))
            bad = httpx.post(
                f"{running.url}/v1/introspect",
                json={"token": 5, "junk": secret.value},
                headers={"Authorization": f"Bearer {env.keys['resource']}"},
            )
            errors.append(bad.text)
            errors.append(
                httpx.post(
                    f"{running.url}/v1/secrets",
                    json={"engine": "token"},
                    headers={"Authorization": f"Bearer {task.token}x"},
                ).text
            )
            for path in (f"/v1/tasks/{secret.value}", f"/v1/leases/{task.token}"):
                errors.append(httpx.get(f"{running.url}{path}",
                                        headers={"Authorization": f"Bearer {env.keys['orchestrator']}"}).text)
                errors.append(httpx.get(f"{running.url}{path}").text)  # unauthenticated: the 401 is logged
    audit = [json.dumps(record_to_dict(r)) for r in running.broker.store.audit_records(limit=100_000)]
    running.broker.close()

    assert all(is_valid(secret) for secret in issued) and len(set(issued)) == len(issued)
    texts = {"logs": caplog.text, "errors": "\n".join(errors)}
    texts["audit export"] = "\n".join(audit)
    assert len(audit) > 50
    files = {p.name: p.read_bytes() for p in env.tmp.iterdir() if p.is_file()}
    assert any(name.endswith(".db") for name in files)
    for name, data in files.items():
        text = data.decode("latin-1")
        for secret in issued:
            assert secret not in text, f"a secret is in {name}"
        assert not [m for m in SHAPE.findall(text) if is_valid(m)], f"a broker credential is in {name}"
    scanner = Scanner(load_ruleset(), Fingerprinter(b"k" * 32), engine="python")  # a third pair of eyes
    control = scanner.scan_bytes(f"token={issued[-1]}".encode(), StreamOrigin("control"))
    assert [f for f in control if f.credential_sha256]  # the scanner does see a leaked secret
    blobs = {**files, **{name: text.encode() for name, text in texts.items()}}
    for name, data in blobs.items():
        found = [f for f in scanner.scan_bytes(data, StreamOrigin(name)) if f.credential_sha256]
        assert not found, f"the scanner found a broker credential in {name}"
    for name, text in texts.items():
        for secret in issued:
            assert secret not in text, f"a secret is in the {name}"
        assert not [m for m in SHAPE.findall(text) if is_valid(m)], f"a broker credential is in the {name}"
