"""Syslog over TLS into a real rsyslog (Debian's `rsyslog` and `rsyslog-gnutls`, started by the test with
its own configuration): rsyslog accepts the TLS connection, parses the RFC 5425 frames and the RFC 5424
messages, and writes what it understood."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from jitsec.connectors.sinks.alert import AlertContext
from jitsec.connectors.sinks.factory import build_sink

from jitsec.kernel.records import Incident
from jitsec.testing import wait_until

from .conftest import free_port
from .tls_peers import MadeCa, make_ca

CONFIG = """
global(workDirectory="{work}"
       DefaultNetstreamDriver="gtls"
       DefaultNetstreamDriverCAFile="{ca.ca_file}"
       DefaultNetstreamDriverCertFile="{ca.cert_file}"
       DefaultNetstreamDriverKeyFile="{ca.key_file}")
module(load="imtcp" StreamDriver.Name="gtls" StreamDriver.Mode="1" StreamDriver.AuthMode="anon")
input(type="imtcp" address="127.0.0.1" port="{port}")
template(name="parsed" type="string"
         string="%hostname%|%app-name%|%msgid%|%syslogfacility%|%syslogseverity%|%structured-data%|%msg%\\n")
action(type="omfile" file="{work}/received.log" template="parsed")
"""


def rsyslogd() -> str:
    """``$JITSEC_TEST_RSYSLOGD`` or ``rsyslogd`` on PATH (``apt-get install rsyslog rsyslog-gnutls``)."""
    found = os.environ.get("JITSEC_TEST_RSYSLOGD") or shutil.which("rsyslogd") or (
        "/usr/sbin/rsyslogd" if Path("/usr/sbin/rsyslogd").exists() else None)
    if found is None:
        message = "rsyslogd is not installed (apt-get install rsyslog rsyslog-gnutls)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.fixture
def rsyslog(tmp_path: Path) -> Iterator[tuple[MadeCa, int, Path]]:
    binary = rsyslogd()
    work = tmp_path / "rsyslog"
    work.mkdir()
    ca = make_ca(work)
    port = free_port()
    config = work / "rsyslog.conf"
    config.write_text(CONFIG.format(work=work, ca=ca, port=port), encoding="utf-8")
    command = [binary, "-n", "-f", str(config), "-i", str(work / "rsyslogd.pid")]
    if os.environ.get("JITSEC_TEST_RSYSLOG_MODULES"):
        command += ["-M", os.environ["JITSEC_TEST_RSYSLOG_MODULES"]]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        def listening() -> bool:
            with socket.socket() as probe:
                return probe.connect_ex(("127.0.0.1", port)) == 0

        assert wait_until(listening, timeout=30), "rsyslogd did not listen"
        yield ca, port, work / "received.log"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_rsyslog_receives_and_parses_alerts_over_tls(
    tmp_path: Path, rsyslog: tuple[MadeCa, int, Path], make_incident: Callable[..., Incident],
    leaked_token: str,
) -> None:
    ca, port, received = rsyslog
    context = AlertContext(scanner="logs-eu-1", host="scan-host-7", console_url="https://soc.example")
    sink = build_sink(f"syslog+tls://127.0.0.1:{port}?ca={ca.ca_file}", tmp_path / "spool", context=context)
    for number in range(3):
        sink.send(make_incident(number))
    assert sink.flush(10)
    sink.close()
    assert wait_until(lambda: received.exists() and len(received.read_text().splitlines()) == 3, timeout=30)
    lines = received.read_text(encoding="utf-8").splitlines()
    host, app, msgid, facility, severity, structured, message = lines[0].split("|", 6)
    assert (host, app, msgid, facility, severity) == ("scan-host-7", "jitsec", "incident", "4", "2")
    assert structured.startswith("[jitsec@32473 id=\"inc-0\"") and 'scanner="logs-eu-1"' in structured
    assert "revoked" in message
    assert [line.split("|")[5].split('"')[1] for line in lines] == ["inc-0", "inc-1", "inc-2"]
    assert leaked_token not in received.read_text(encoding="utf-8")
