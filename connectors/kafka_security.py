"""How jitsec authenticates to Kafka: the security parameters of a ``kafka://`` address, for the
source and the alert sink alike.

``security=PLAINTEXT|SASL_PLAINTEXT|SASL_SSL|SSL`` (default PLAINTEXT), ``mechanism=PLAIN|SCRAM-SHA-256|
SCRAM-SHA-512`` and ``username=NAME`` (both required with SASL, refused without), ``ca=PATH`` (a PEM
CA bundle for TLS; the system store otherwise). The password is never part of an address, which
lands in shell history, ``ps``, logs and daemon configs: it is read from the ``JITSEC_KAFKA_PASSWORD``
environment variable when the source or sink is opened, and is only ever handed to the client.

kafka-python reports a refused login only as a bootstrap timeout; ``AuthFailureWatch`` tells the two
apart by the ``SaslAuthenticationFailedError`` the library logs meanwhile. kafka-python also dumps
whole requests (a PLAIN login holds the password) at DEBUG level: ``guard_kafka_logs`` drops those
records whenever a password is handed to a client.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal
from urllib.parse import quote

from jitsec.connectors.errors import SourceAddressError
from kafka.errors import SaslAuthenticationFailedError, UnsupportedSaslMechanismError

SecurityProtocol = Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL", "SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
PROTOCOLS: tuple[SecurityProtocol, ...] = ("PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL", "SSL")
MECHANISMS: tuple[SaslMechanism, ...] = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
SECURITY_PARAMETERS = frozenset({"security", "mechanism", "username", "ca"})
PASSWORD_ENV = "JITSEC_KAFKA_PASSWORD"


class KafkaAddressError(SourceAddressError):
    """A ``kafka://`` address that cannot be used; the message says what was expected."""


class KafkaCredentialsError(KafkaAddressError):
    """SASL is asked for but ``JITSEC_KAFKA_PASSWORD`` is not set (the message never holds a secret)."""


@dataclass(frozen=True, slots=True)
class KafkaSecurity:
    """The address's security parameters; holds no secret, so it may be printed and logged."""

    protocol: SecurityProtocol = "PLAINTEXT"
    mechanism: SaslMechanism | None = None
    username: str | None = None
    ca_file: str | None = None

    @property
    def uses_sasl(self) -> bool:
        return self.protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    @property
    def uses_tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    def client_options(self, password: str | None) -> dict[str, Any]:
        """kafka-python's options for this security (``KafkaConsumer`` and ``KafkaProducer`` alike)."""
        options: dict[str, Any] = {"security_protocol": self.protocol}
        if self.uses_sasl:
            if password is None:
                raise KafkaCredentialsError(_missing_password(self))
            guard_kafka_logs(password)
            options.update(sasl_mechanism=self.mechanism, sasl_plain_username=self.username,
                           sasl_plain_password=password)
        if self.uses_tls:
            options["ssl_check_hostname"] = True
            if self.ca_file is not None:
                options["ssl_cafile"] = self.ca_file
        return options


def parse_kafka_security(query: Mapping[str, list[str]], address: str) -> KafkaSecurity:
    """The security parameters of a parsed address query; ``KafkaAddressError`` names a bad one."""
    protocol = single_parameter(query, "security", "PLAINTEXT", address).upper()
    if protocol not in PROTOCOLS:
        raise KafkaAddressError(f"{address!r}: security must be one of {', '.join(PROTOCOLS)}")
    mechanism = single_parameter(query, "mechanism", "", address).upper() or None
    username = single_parameter(query, "username", "", address) or None
    ca_file = single_parameter(query, "ca", "", address) or None
    if protocol in ("SASL_PLAINTEXT", "SASL_SSL"):
        if mechanism is None or mechanism not in MECHANISMS:
            raise KafkaAddressError(
                f"{address!r}: security={protocol} needs mechanism, one of {', '.join(MECHANISMS)}")
        if username is None:
            raise KafkaAddressError(f"{address!r}: security={protocol} needs username")
    elif mechanism is not None or username is not None:
        raise KafkaAddressError(
            f"{address!r}: mechanism and username need security=SASL_PLAINTEXT or SASL_SSL")
    if ca_file is not None and protocol not in ("SSL", "SASL_SSL"):
        raise KafkaAddressError(f"{address!r}: ca needs security=SSL or SASL_SSL")
    return KafkaSecurity(protocol, mechanism, username, ca_file)


def single_parameter(query: Mapping[str, list[str]], name: str, default: str, address: str) -> str:
    """The one value of query parameter ``name`` (``default`` when absent); given twice is an error."""
    values = query.get(name)
    if not values:
        return default
    if len(values) > 1:
        raise KafkaAddressError(f"{address!r}: {name} given {len(values)} times")
    return values[0]


def kafka_password(security: KafkaSecurity, environ: Mapping[str, str] | None = None) -> str | None:
    """What opening a source or sink needs, checked at start: the SASL password from
    ``JITSEC_KAFKA_PASSWORD`` (None without SASL; ``KafkaCredentialsError`` when SASL is asked for
    and it is unset or empty) and a readable ``ca`` file (``KafkaAddressError`` otherwise)."""
    if security.ca_file is not None and not os.access(security.ca_file, os.R_OK):
        raise KafkaAddressError(f"ca={security.ca_file}: no readable CA bundle there")
    if not security.uses_sasl:
        return None
    password = (os.environ if environ is None else environ).get(PASSWORD_ENV)
    if not password:
        raise KafkaCredentialsError(_missing_password(security))
    guard_kafka_logs(password)
    return password


def _missing_password(security: KafkaSecurity) -> str:
    return (f"security={security.protocol} for user {security.username!r} needs the password in the "
            f"{PASSWORD_ENV} environment variable (never in the address)")


def security_query(security: KafkaSecurity) -> str:
    """The address query part that gives ``security`` back (empty for PLAINTEXT), URL-encoded; no
    secret."""
    values = {"security": None if security.protocol == "PLAINTEXT" else security.protocol,
              "mechanism": security.mechanism, "username": security.username, "ca": security.ca_file}
    return "&".join(f"{name}={quote(value, safe='/')}" for name, value in values.items()
                    if value is not None)


# kafka-python's loggers that write whole requests at DEBUG level, SASL logins included (a PLAIN
# login carries the password in clear)
REQUEST_LOGGERS = ("kafka.protocol.parser", "kafka.net.connection", "kafka.conn", "kafka.protocol")


class _SaslLogGuard(logging.Filter):
    """Drops kafka-python log records that show a SASL login or any byte of a password in hand."""

    def __init__(self) -> None:
        super().__init__()
        self._needles: set[str] = set()
        self._lock = threading.Lock()

    def add(self, password: str) -> None:
        with self._lock:  # the password as text and as Python shows it inside bytes reprs
            self._needles.update({password, repr(password.encode("utf-8"))[2:-1]})

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a record that cannot be formatted is not shown either
            return False
        if "SaslAuthenticate" in message:
            return False
        with self._lock:
            return not any(needle in message for needle in self._needles)


def guard_kafka_logs(password: str) -> None:
    """Keeps ``password`` out of kafka-python's DEBUG request dumps, whoever turns DEBUG on. The
    guard is attached once to each request logger (process-wide, like the loggers themselves)."""
    for name in REQUEST_LOGGERS:
        logger = logging.getLogger(name)
        guard = next((f for f in logger.filters if isinstance(f, _SaslLogGuard)), None)
        if guard is None:
            guard = _SaslLogGuard()
            logger.addFilter(guard)
        guard.add(password)


class AuthFailureWatch(logging.Handler):
    """Context manager: ``failed`` is set when kafka-python logs a refused login meanwhile.

    kafka-python retries a refused SASL login like an unreachable broker and finally raises a
    bootstrap timeout; the failure itself only reaches its log (as the exception object, which is
    what is matched, never a message). A client of another source in the same process failing at the
    same moment is also seen: the kind may then say ``auth`` for an unreachable broker, never the
    reverse.
    """

    _AUTH_ERRORS = (SaslAuthenticationFailedError, UnsupportedSaslMechanismError)

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self._failed = threading.Event()
        self._logger = logging.getLogger("kafka")

    @property
    def failed(self) -> bool:
        return self._failed.is_set()

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args if isinstance(record.args, tuple) else ()
        if any(isinstance(arg, self._AUTH_ERRORS) for arg in args):
            self._failed.set()

    def __enter__(self) -> AuthFailureWatch:
        self._logger.addHandler(self)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._logger.removeHandler(self)
