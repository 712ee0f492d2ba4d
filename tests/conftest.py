"""Fixtures shared by every area: where the real services are, and databases of one's own on the
PostgreSQL one (``fresh_database`` per module, ``scratch_database`` per test).

``scripts/services start`` prints the connection settings as KEY=VALUE lines and the test command
exports them. A test that needs a service and finds no setting fails under CI (``CI`` set) and is
skipped, with the reason, on a developer's machine that has not started the services.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from psycopg.conninfo import conninfo_to_dict

from jitsec.testing import fresh_postgres_database


def _service_setting(name: str, service: str) -> str:
    value = os.environ.get(name)
    if value:
        return value
    message = f"{service} is not running: {name} is not set (run `scripts/services start {service}`)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    """A superuser DSN of the test cluster (the broker's engine and store tests create their own DBs)."""
    return _service_setting("JITSEC_TEST_POSTGRES_DSN", "postgres")


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    return _service_setting("JITSEC_TEST_KAFKA_BOOTSTRAP", "kafka")


@pytest.fixture(scope="session")
def kafka_sasl() -> tuple[str, str, str]:
    """``(bootstrap, username, password)`` of the test Kafka's SASL_PLAINTEXT listener (PLAIN and
    SCRAM-SHA-256/512 for that user)."""
    return (_service_setting("JITSEC_TEST_KAFKA_SASL_BOOTSTRAP", "kafka"),
            _service_setting("JITSEC_TEST_KAFKA_SASL_USERNAME", "kafka"),
            _service_setting("JITSEC_TEST_KAFKA_SASL_PASSWORD", "kafka"))


@pytest.fixture(scope="session")
def elasticsearch_url() -> str:
    return _service_setting("JITSEC_TEST_ELASTICSEARCH_URL", "elasticsearch")


@pytest.fixture(scope="session")
def nginx_settings() -> dict[str, str]:
    """The mutual-TLS nginx: ``url``, ``server_ca``, ``ca_dir`` (an x509 engine's state_dir whose CA
    it trusts), ``crl`` (the CRL file it reads) and ``reload`` (the command that makes it read it)."""
    keys = ("url", "server_ca", "ca_dir", "crl", "reload")
    return {key: _service_setting(f"JITSEC_TEST_NGINX_{key.upper()}", "nginx") for key in keys}


@pytest.fixture(scope="session")
def sshd() -> dict[str, str]:
    """The test sshd's settings: ``host``, ``port``, ``user`` (who may log in), ``ca_file`` (its
    TrustedUserCAKeys), ``krl_file`` (its RevokedKeys) and ``host_key`` (its public host key)."""
    return {key: _service_setting(f"JITSEC_TEST_SSHD_{key.upper()}", "sshd")
            for key in ("host", "port", "user", "ca_file", "krl_file", "host_key")}


# PostgreSQL databases -------------------------------------------------------------------------------


def _database(postgres_dsn: str, label: str) -> contextlib.AbstractContextManager[str]:
    """A database created on the test cluster for one module or test, dropped afterwards (as a DSN)."""
    return fresh_postgres_database(postgres_dsn, f"jitsec_t_{label[:20]}")


@pytest.fixture(scope="module")
def fresh_database(postgres_dsn: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """The superuser DSN pointed at a database created for this test module (dropped afterwards)."""
    with _database(postgres_dsn, request.module.__name__.rpartition(".")[2].removeprefix("test_")) as dsn:
        yield dsn


@pytest.fixture
def scratch_database(postgres_dsn: str) -> Iterator[str]:
    """Like ``fresh_database``, for one test only (for tests that break what they touch)."""
    with _database(postgres_dsn, "scratch") as dsn:
        yield dsn


def dsn_to_url(dsn: str) -> str:
    """A libpq key=value DSN as the ``postgresql://`` URL the broker's store setting takes."""
    parts = conninfo_to_dict(dsn)
    user = quote(str(parts.get("user", "")), safe="")
    password = quote(str(parts.get("password", "")), safe="")
    return (f"postgresql://{user}:{password}@{parts.get('host', '127.0.0.1')}:{parts.get('port', 5432)}/"
            f"{quote(str(parts['dbname']), safe='')}")


@pytest.fixture
def as_url() -> Callable[[str], str]:
    """``dsn_to_url``, for tests (conftest modules are not imported by name)."""
    return dsn_to_url


class TcpProxy:
    """Forwards 127.0.0.1:<port> to ``target``, so a test can take a service away and bring it back
    without touching the shared one. The port is chosen at once (it can be handed out before the
    proxy listens); ``start`` listens on it, again after a ``stop``; ``stop`` closes the listener and
    cuts every open connection."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port: int = probe.getsockname()[1]
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    close = stop

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self._target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets.update((client, upstream))
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            with self._lock:
                self._sockets.discard(source)
                self._sockets.discard(sink)


@pytest.fixture
def tcp_proxy() -> Iterator[Callable[[str, int], TcpProxy]]:
    """Makes ``TcpProxy(host, port)`` instances, all stopped when the test ends."""
    made: list[TcpProxy] = []

    def make(host: str, port: int) -> TcpProxy:
        made.append(TcpProxy(host, port))
        return made[-1]

    yield make
    for proxy in made:
        proxy.stop()


def _with_last_character_changed(credential: str) -> str:
    return credential[:-1] + ("A" if credential[-1] != "A" else "B")


@pytest.fixture(scope="session")
def last_character_changed() -> Callable[[str], str]:
    """Spoils a credential by its final character, never yielding the credential itself.

    Appending a fixed letter instead is wrong once in 62 draws: the last character may already be it.
    """
    return _with_last_character_changed

@pytest.fixture
def git_repo(tmp_path: Path) -> Callable[..., str]:
    """A fresh repository in tmp_path/repo; returns a function running git in it."""
    repo = tmp_path / "repo"
    repo.mkdir()

    def git(*arguments: str, stdin: bytes | None = None) -> str:
        result = subprocess.run(
            ["git", "-C", str(repo), *arguments],
            input=stdin,
            capture_output=True,
            check=True,
            env={
                "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
                "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org",
                "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(tmp_path), "PATH": "/usr/bin:/bin",
            },
        )  # fmt: skip
        return result.stdout.decode()

    git("init", "-q", "-b", "main")
    return git


# PKCS#11 (SoftHSM2) -------------------------------------------------------------------------------
SOFTHSM_MODULES = ("/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
                   "/usr/local/lib/softhsm/libsofthsm2.so")


@dataclass
class SoftHsm:
    """A SoftHSM2 token directory of this test session. The PKCS#11 library is loaded once per process
    and does not see tokens made after that, so in-process tests share ``token`` (with labels of their
    own) and tests that start processes make tokens of their own with ``new_token``."""

    module: str
    conf: Path
    token: str
    pin: str

    def new_token(self, label: str, pin: str | None = None) -> str:
        subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", label, "--pin", pin or self.pin,
                        "--so-pin", "so-" + (pin or self.pin)], check=True, capture_output=True,
                       env={**os.environ, "SOFTHSM2_CONF": str(self.conf)})
        return label


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> SoftHsm:
    """A SoftHSM2 token (real PKCS#11); fails under CI when softhsm2 is not installed."""
    module = next((path for path in SOFTHSM_MODULES if Path(path).is_file()), None)
    if module is None or shutil.which("softhsm2-util") is None:
        message = "softhsm2 is not installed (apt-get install softhsm2; scripts/test installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    directory = tmp_path_factory.mktemp("softhsm")
    (directory / "tokens").mkdir()
    conf = directory / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {directory / 'tokens'}\nobjectstore.backend = file\n"
                    "log.level = ERROR\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)  # before the library is first loaded in this process
    hsm = SoftHsm(module=module, conf=conf, token="jitsec-test", pin="4711-test-pin")
    hsm.new_token(hsm.token)
    return hsm
