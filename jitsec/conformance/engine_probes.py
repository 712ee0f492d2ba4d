"""Probes for the credentials whose resource is not the broker: an SSH certificate (does the KRL the
broker publishes list it, as sshd's ``RevokedKeys`` would read it?) and a Kafka SCRAM user (does a
fresh SCRAM-SHA-512 login to the SASL listener succeed?).

The KRL is judged by OpenSSH's own reader (``ssh-keygen -Q``), so the suite agrees with sshd rather
than with a second parser of the format. A KRL that cannot be fetched or read never counts as listing
a certificate: revocation is shown, not presumed.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from jitsec.broker.client import BrokerAPIError, BrokerClient
from jitsec.conformance.resources import Probe
from jitsec.kernel.redaction import scrub

KEYGEN_TIMEOUT_SECONDS = 10.0
LOGIN_REFUSED = "_AUTHENTICATION"  # librdkafka's name for a failed SASL login
METADATA_WAIT_SECONDS = 0.25


def krl_listing(broker: BrokerClient, engine: str, certificate: str) -> tuple[bool | None, str]:
    """Whether the ssh engine's published KRL revokes ``certificate`` (an OpenSSH certificate line);
    None with a reason when the KRL could not be fetched or read."""
    try:
        krl = broker.ssh_krl(engine)
    except (BrokerAPIError, httpx.HTTPError) as error:
        return None, f"the KRL could not be fetched: {error}"
    with tempfile.TemporaryDirectory(prefix="jitsec-conformance-krl-") as scratch:
        krl_path, cert_path = Path(scratch) / "revoked.krl", Path(scratch) / "cert.pub"
        krl_path.write_bytes(krl)
        cert_path.write_text(certificate + "\n", encoding="ascii")  # public: no secret in a certificate
        try:
            done = subprocess.run(  # a fixed argv; files of our own
                ["ssh-keygen", "-Q", "-f", str(krl_path), str(cert_path)],
                capture_output=True, text=True, check=False, timeout=KEYGEN_TIMEOUT_SECONDS,
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            return None, f"ssh-keygen -Q did not run: {type(error).__name__}"
    if done.returncode == 0:
        return False, "not listed in the KRL"
    if done.returncode == 1 and "REVOKED" in done.stdout:
        return True, "listed in the KRL (ssh-keygen -Q: REVOKED)"
    return None, f"ssh-keygen -Q could not read the KRL: {(done.stderr or done.stdout).strip()[:200]}"


def ssh_certificate_probe(broker: BrokerClient, engine: str, certificate: str) -> Probe:
    """An SSH certificate works until the published KRL is shown to list it."""
    listed, reason = krl_listing(broker, engine, certificate)
    return Probe(listed is not True, reason)


@dataclass
class KafkaLogin:
    """A lease's SCRAM-SHA-512 user on a Kafka SASL listener, tried with a fresh connection each time."""

    bootstrap: str
    username: str
    password: str = field(repr=False)
    security_protocol: str = "SASL_PLAINTEXT"

    def login(self, timeout: float = 5.0) -> tuple[bool | None, str]:
        """True when the cluster answers a metadata request (which needs a completed login), False
        when it refuses the login, None with a reason when neither happened within ``timeout``."""
        from confluent_kafka import KafkaError, KafkaException  # noqa: PLC0415 - only with --kafka
        from confluent_kafka.admin import AdminClient  # noqa: PLC0415

        errors: list[KafkaError] = []
        settings: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap, "security.protocol": self.security_protocol,
            "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": self.username,
            "sasl.password": self.password, "error_cb": errors.append,
            "log_level": 0,  # a refused login is the expected answer after completion: not printed
        }
        client = AdminClient(settings)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:  # a failed login only reaches error_cb (served by poll); the request times out
                client.list_topics(timeout=METADATA_WAIT_SECONDS)
            except KafkaException:
                client.poll(0.05)
                refused = [e for e in errors if e.name() == LOGIN_REFUSED]
                if refused:
                    return False, scrub(f"login refused: {refused[0].str()}", [self.password])
                continue
            return True, "SCRAM-SHA-512 login accepted"
        names = ", ".join(sorted({e.name() for e in errors})) or "no answer"
        return None, scrub(f"neither accepted nor refused within {timeout:g} s ({names})", [self.password])

    def probe(self) -> Probe:
        """The user works until a login is refused (no answer is not a refusal)."""
        accepted, reason = self.login()
        return Probe(accepted is not False, reason)
