from __future__ import annotations

import tomllib
from pathlib import Path

import httpx
import pytest
from jitsec.connectors.daemon_config import DaemonConfigError, load_daemon_config, parse_daemon_config
from jitsec.connectors.telemetry import DaemonMetrics, HealthServer

from jitsec.kernel.ports import SourceErrors
from jitsec.kernel.records import BrokerStatus, Chunk, Confidence, FileOrigin, Finding, Severity


def parse(text: str, base: Path = Path("/etc/jitsec")):
    return parse_daemon_config(tomllib.loads(text), label="jitsec.toml", base=base)


def test_full_config_with_relative_paths() -> None:
    config = parse(
        'sources = ["/var/log/app.log", "-"]\nalerts = ["console"]\ncheckpoint_dir = "ck"\n'
        'from_end = true\nbroker = "http://127.0.0.1:8200"\nrules = ["extra.toml"]\nexclude = ["*.gz"]\n'
        'scanner_name = "logs-eu-1"\nconsole_url = "https://broker:8470"\n'
        '[http]\nlisten = "10.1.2.3:9000"\n'
    )
    assert (config.scanner_name, config.console_url) == ("logs-eu-1", "https://broker:8470")
    assert config.exclude == ("*.gz",)
    assert config.sources == ("/var/log/app.log", "-")
    assert config.checkpoint_dir == Path("/etc/jitsec/ck")
    assert config.state_dir == Path("/etc/jitsec/state")
    assert (config.listen_host, config.listen_port) == ("10.1.2.3", 9000)
    assert config.rules == (Path("/etc/jitsec/extra.toml"),)
    assert config.from_end and config.broker == "http://127.0.0.1:8200"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sources = []", "sources: at least one"),
        ('sources = ["a"]\nsourcse = ["b"]', "sourcse: unknown key"),
        ('sources = ["a"]\n[http]\nlisten = "nope"', "http.listen: must be HOST:PORT"),
        ('sources = ["a"]\n[http]\nport = 1', "http.port: unknown key"),
        ('sources = ["a"]\nbroker = "ftp://x"', "broker: must be an http"),
        ('sources = ["a"]\nfrom_end = "yes"', "from_end: must be true or false"),
        ('sources = "a"', "sources: must be a list"),
        ('sources = ["a"]\nexclude = "*.gz"', "exclude: must be a list"),
        ('sources = ["a"]\nscanner_name = ""', "scanner_name: must be a non-empty string"),
        ('sources = ["a"]\nconsole_url = "broker:8470"', "console_url: must be an http"),
    ],
)
def test_errors_name_file_and_key(text: str, message: str) -> None:
    with pytest.raises(DaemonConfigError, match=f"jitsec.toml: {message}"):
        parse(text)


def test_unreadable_or_invalid_file(tmp_path: Path) -> None:
    with pytest.raises(DaemonConfigError, match="cannot read"):
        load_daemon_config(tmp_path / "absent.toml")
    (tmp_path / "bad.toml").write_text("sources = [")
    with pytest.raises(DaemonConfigError, match="not valid TOML"):
        load_daemon_config(tmp_path / "bad.toml")


class _Source:
    def __init__(self) -> None:
        self.errors = SourceErrors()

    def lag(self) -> int:
        return 42


def _finding(rule: str, broker: BrokerStatus | None) -> Finding:
    return Finding(rule, FileOrigin("a.log"), 1, 1, 0, "jit_abcd…(50 chars)", "hmac-sha256:00", Severity.HIGH,
                   Confidence.STRUCTURAL, broker=broker)


def test_health_and_metrics_over_real_http() -> None:
    clock = iter(float(n) for n in range(1000))
    metrics = DaemonMetrics(clock=lambda: next(clock))
    source = _Source()
    source.errors.record("missing", "a.log")
    metrics.watch_sources([("a.log", source)], lambda: 3)
    metrics.count_batch("a.log", [Chunk(b"12345", FileOrigin("a.log"))])
    metrics.count_findings([_finding("aws-key", None), _finding("broker-engine-token", BrokerStatus.REVOKED)])
    server = HealthServer(metrics, "127.0.0.1", 0)
    server.start()
    base = f"http://127.0.0.1:{server.address[1]}"
    try:
        health = httpx.get(f"{base}/healthz")
        assert health.status_code == 200 and health.json()["status"] == "ok"
        assert health.json()["seconds_since_last_chunk"] is not None
        text = httpx.get(f"{base}/metrics").text
        assert 'jitsec_bytes_scanned_total{source="a.log"} 5.0' in text
        assert 'jitsec_findings_total{rule="broker-engine-token"} 1.0' in text
        assert "jitsec_revocations_total 1.0" in text
        assert 'jitsec_source_errors_total{kind="missing",source="a.log"} 1.0' in text
        assert 'jitsec_consumer_lag{source="a.log"} 42.0' in text
        assert "jitsec_incidents 3.0" in text
        assert httpx.get(f"{base}/other").status_code == 404
        server.stopping.set()
        assert httpx.get(f"{base}/healthz").status_code == 503
    finally:
        server.close()
