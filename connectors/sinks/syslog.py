"""Syslog sink: RFC 5424 messages over UDP (one datagram each), TCP (RFC 6587 octet counting) or TLS
(RFC 5425: the same octet-counting framing inside a TLS connection, the server's certificate checked
against ``ca`` or the system's roots, and its name against the host).

``<PRI>1 TIMESTAMP HOSTNAME jitsec PROCID incident [jitsec@32473 ...] BOM summary``: facility
``auth`` (4) by default; severity from the incident (critical→crit, high→err, medium→warning,
low→notice). Structured data carries the incident id, version, fingerprint, rule, action, lease,
latency, the scanner's name, first/last seen (ISO-8601 UTC) and the console link; HOSTNAME is the
scanner's host; MSG is the one-line summary. No secret: preview and fingerprint only.

TCP is retried and ordered through the spool like every sink. UDP has no acknowledgement: a datagram
to a listener that is down is lost without an error the sender can always see (only an ICMP
refusal, sometimes), so use TCP where delivery matters.
"""

from __future__ import annotations

import os
import socket
import ssl
from datetime import UTC, datetime
from pathlib import Path

from jitsec.connectors.sinks.alert import AlertContext, iso_utc
from jitsec.connectors.sinks.base import SpooledSink
from jitsec.connectors.sinks.serialize import incident_summary
from jitsec.connectors.sinks.spool import Backoff, DeliveryError

from jitsec.kernel.records import Incident, Severity

FACILITY_AUTH = 4
# RFC 5612 reserves 32473 for documentation and examples; no enterprise number is registered.
SD_ID = "jitsec@32473"
_SEVERITY = {Severity.CRITICAL: 2, Severity.HIGH: 3, Severity.MEDIUM: 4, Severity.LOW: 5}
_MAX_UDP = 8192


def _sd_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _header_token(value: str, fallback: str) -> str:
    """Header fields are printable US-ASCII without spaces (RFC 5424 §6)."""
    cleaned = "".join(ch for ch in value if 33 <= ord(ch) <= 126)
    return cleaned[:48] or fallback


def format_rfc5424(
    incident: Incident, *, facility: int = FACILITY_AUTH, hostname: str | None = None,
    now: datetime | None = None, procid: int | None = None, context: AlertContext | None = None,
) -> bytes:
    """One RFC 5424 message (without transport framing)."""
    pri = facility * 8 + _SEVERITY[incident.severity]
    stamp = (now or datetime.now(UTC)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    host = _header_token(hostname or (context.host if context else socket.gethostname()), "-")
    params = {
        "id": incident.incident_id,
        "version": str(incident.version),
        "fingerprint": incident.fingerprint,
        "rule": incident.rule_id,
        "severity": incident.severity.value,
        "action": incident.action.value,
        "occurrences": str(incident.occurrences),
    }
    if incident.lease_id:
        params["lease"] = incident.lease_id
    if incident.latency_ms is not None:
        params["latency_ms"] = f"{incident.latency_ms:.1f}"
    params["first_seen"] = iso_utc(incident.first_seen)
    params["last_seen"] = iso_utc(incident.last_seen)
    if context is not None:
        params["scanner"] = context.scanner
        link = context.incident_link(incident)
        if link:
            params["console"] = link
    sd = "[" + SD_ID + "".join(f' {key}="{_sd_escape(value)}"' for key, value in params.items()) + "]"
    header = f"<{pri}>1 {stamp} {host} jitsec {procid or os.getpid()} incident {sd} "
    return header.encode("ascii", "replace") + b"\xef\xbb\xbf" + incident_summary(incident).encode("utf-8")


def frame_octet_counting(message: bytes) -> bytes:
    """RFC 6587 §3.4.1: ``MSG-LEN SP SYSLOG-MSG``."""
    return str(len(message)).encode("ascii") + b" " + message


class SyslogSink(SpooledSink):
    def __init__(
        self,
        host: str,
        port: int,
        spool_dir: Path | str,
        *,
        protocol: str = "udp",
        facility: int = FACILITY_AUTH,
        timeout: float = 5.0,
        backoff: Backoff | None = None,
        ca_file: str | None = None,
        context: AlertContext | None = None,
    ) -> None:
        """``protocol`` is udp, tcp or tls; ``ca_file`` (tls only) the PEM file of the CA(s) that
        signed the receiver's certificate (default: the system's roots)."""
        if protocol not in ("udp", "tcp", "tls"):
            raise ValueError(f"syslog protocol must be udp, tcp or tls, got {protocol!r}")
        self.address = (host, port)
        self.protocol = protocol
        self._facility = facility
        self._timeout = timeout
        self._socket: socket.socket | None = None
        self._tls: ssl.SSLContext | None = None
        if protocol == "tls":
            self._tls = ssl.create_default_context(cafile=ca_file)
        super().__init__(f"syslog+{protocol}://{host}:{port}", spool_dir, backoff=backoff, context=context)

    def deliver(self, incident: Incident) -> None:
        message = format_rfc5424(incident, facility=self._facility, context=self.context)
        try:
            if self.protocol == "udp":
                self._send_udp(message[:_MAX_UDP])
            else:
                self._send_tcp(frame_octet_counting(message))
        except OSError as error:  # ssl.SSLError (a refused certificate) is one too
            self._close_receiver()
            raise DeliveryError(f"syslog {self.protocol} {self.address[0]}:{self.address[1]}: "
                                f"{type(error).__name__}") from None

    def _connected(self) -> socket.socket:
        if self._socket is None:
            if self.protocol == "udp":
                family = socket.getaddrinfo(*self.address, type=socket.SOCK_DGRAM)[0][0]
                sock = socket.socket(family, socket.SOCK_DGRAM)
                sock.connect(self.address)
            else:
                sock = socket.create_connection(self.address, timeout=self._timeout)
                if self._tls is not None:
                    try:
                        sock = self._tls.wrap_socket(sock, server_hostname=self.address[0])
                    except OSError:
                        sock.close()
                        raise
            sock.settimeout(self._timeout)
            self._socket = sock
        return self._socket

    def _send_udp(self, message: bytes) -> None:
        self._connected().send(message)

    def _send_tcp(self, framed: bytes) -> None:
        if self._socket is not None and self._peer_closed(self._socket):
            self._close_receiver()  # reconnect rather than write into a half-closed connection
        self._connected().sendall(framed)

    def _peer_closed(self, sock: socket.socket) -> bool:
        if isinstance(sock, ssl.SSLSocket):
            return self._tls_peer_closed(sock)
        sock.setblocking(False)
        try:
            return sock.recv(1, socket.MSG_PEEK) == b""
        except BlockingIOError:
            return False
        except OSError:
            return True
        finally:
            sock.settimeout(self._timeout)

    def _tls_peer_closed(self, sock: ssl.SSLSocket) -> bool:
        """TLS has no peek: a receiver sends nothing back, so readable means closed (or noise)."""
        sock.setblocking(False)
        try:
            return sock.recv(1) == b""
        except (ssl.SSLWantReadError, BlockingIOError):
            return False
        except OSError:
            return True
        finally:
            sock.settimeout(self._timeout)

    def _close_receiver(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
