"""``POST /v1/leaks`` and ``GET /v1/fingerprints`` over real loopback HTTP: roles, validation, paging,
and the scanner's live-fingerprint cache fed by them."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from jitsec.broker.client import BrokerAPIError
from jitsec.broker.leaks import LeakReport, LeakStatus, leak_batches

from jitsec.kernel.credential_format import sha256_fingerprint
from jitsec.response.live_cache import LiveFingerprintCache
from jitsec.testing import AGENT, EmbeddedBroker


def issue(broker: EmbeddedBroker) -> str:
    service = broker.broker.service
    started = service.start_task("orchestrator", AGENT, "report", ["reports:read"], 600)
    redeemed = service.redeem(started.task.task_id, started.grant)
    return service.issue(service.authenticate_task_token(redeemed.token), "token", ["reports:read"]).secret


def test_the_scanner_reports_and_the_broker_revokes(broker: EmbeddedBroker) -> None:
    token = issue(broker)
    with broker.client("scanner") as scanner:
        report = LeakReport(sha256_fingerprint(token), "/log:1", "broker-engine-token")
        [verdict] = scanner.report_leaks([report])
    assert verdict.status is LeakStatus.REVOKED and verdict.agent == AGENT
    assert not broker.broker.service.introspect(token, "t").active


@pytest.mark.parametrize(("role", "status"), [(None, 401), ("orchestrator", 403), ("resource", 403)])
def test_only_scanners_and_admins_may_report(broker: EmbeddedBroker, role: str | None, status: int) -> None:
    token = issue(broker)
    with broker.client(role) as client, pytest.raises(BrokerAPIError) as raised:
        client.report_leaks([LeakReport(sha256_fingerprint(token))])
    assert raised.value.status == status
    assert broker.broker.service.introspect(token, "t").active


def test_a_plaintext_secret_is_refused_and_not_echoed(broker: EmbeddedBroker) -> None:
    token = issue(broker)
    response = httpx.post(f"{broker.url}/v1/leaks", json={"leaks": [{"fingerprint": token}]},
                          headers={"Authorization": f"Bearer {broker.keys['scanner']}"})
    assert response.status_code == 422
    assert token not in response.text
    assert broker.broker.service.introspect(token, "t").active


def test_fingerprints_page_and_feed_the_live_cache(broker: EmbeddedBroker) -> None:
    tokens = [issue(broker) for _ in range(3)]
    with broker.client("scanner") as scanner:
        first = scanner.live_fingerprints()
        response = httpx.get(f"{broker.url}/v1/fingerprints", params={"limit": 2},
                             headers={"Authorization": f"Bearer {broker.keys['scanner']}"})
        assert response.status_code == 200 and len(response.json()["fingerprints"]) == 2
        assert response.json()["next_cursor"]
        cache = LiveFingerprintCache(scanner)
        assert cache.refresh() == len(first.entries) == 6  # three tokens and three task tokens
        assert all(sha256_fingerprint(t) in cache for t in tokens)
        scanner.report_leaks([LeakReport(sha256_fingerprint(tokens[0]))])
        cache.refresh()
        assert sha256_fingerprint(tokens[0]) not in cache
        assert sha256_fingerprint(tokens[1]) in cache


def test_large_batches_are_split_under_the_request_limit(broker: EmbeddedBroker) -> None:
    reports = [LeakReport(f"{n:064x}", "/very/long/path/" + "x" * 900, "generic") for n in range(120)]
    assert len(leak_batches(reports)) > 1
    with broker.client("scanner") as scanner:
        verdicts = scanner.report_leaks(reports)
    assert [v.fingerprint for v in verdicts] == [r.fingerprint for r in reports]
    assert all(v.status is LeakStatus.UNKNOWN for v in verdicts)


def test_the_broker_config_can_make_a_leak_end_the_whole_task(tmp_path: Path) -> None:
    broker = EmbeddedBroker(tmp_path, on_leak="task").start()
    try:
        service = broker.broker.service
        started = service.start_task("orchestrator", AGENT, "report", ["reports:read"], 600)
        caller = service.authenticate_task_token(service.redeem(started.task.task_id, started.grant).token)
        first, second = (service.issue(caller, "token", ["reports:read"]).secret for _ in range(2))
        with broker.client("scanner") as scanner:
            [verdict] = scanner.report_leaks([LeakReport(sha256_fingerprint(first))])
        assert verdict.status is LeakStatus.REVOKED and verdict.also_revoked
        assert not service.introspect(second, "t").active
    finally:
        broker.close()
