"""Fixtures for the PostgreSQL engine and store tests: a fresh database per module, built from the
superuser DSN that ``scripts/services start postgres`` prints, and a loopback TCP proxy that lets a
test cut the broker off from PostgreSQL without disturbing the shared cluster (stop it: "the database
went away"; start it again on the same port: "it came back")."""

from __future__ import annotations

import contextlib
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from urllib.parse import quote

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from broker.engines.postgres_connections import AdminConnections
from broker.engines.postgres_roles import revoke_role


@contextlib.contextmanager
def _database(postgres_dsn: str, label: str) -> Iterator[str]:
    name = f"jitsec_t_{label[:20]}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_dsn, autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_conninfo(postgres_dsn, dbname=name)
    finally:
        with psycopg.connect(postgres_dsn, autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


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


@pytest.fixture
def role_prefix(postgres_dsn: str) -> Iterator[str]:
    """A role prefix unique to one test, so tests never see (or drop) each other's roles; whatever a
    test leaves under it is dropped afterwards (the cluster is shared)."""
    prefix = f"jt{uuid.uuid4().hex[:6]}_"
    yield prefix
    connections = AdminConnections(postgres_dsn)
    try:
        with connections.connection() as conn:
            names = [row[0] for row in conn.execute(
                "SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s)", (prefix,)).fetchall()]
        for name in names:
            revoke_role(connections, name, [])
    finally:
        connections.close()


def dsn_to_url(dsn: str) -> str:
    """A libpq key=value DSN as the ``postgresql://`` URL the broker's store setting takes."""
    parts = conninfo_to_dict(dsn)
    user = quote(str(parts.get("user", "")), safe="")
    password = quote(str(parts.get("password", "")), safe="")
    return (f"postgresql://{user}:{password}@{parts.get('host', '127.0.0.1')}:{parts.get('port', 5432)}/"
            f"{quote(str(parts['dbname']), safe='')}")


@pytest.fixture
def as_url() -> Callable[[str], str]:
    return dsn_to_url


@pytest.fixture
def postgres_proxy(postgres_dsn: str) -> Iterator[TcpProxy]:
    settings = conninfo_to_dict(postgres_dsn)
    proxy = TcpProxy(str(settings.get("host") or "127.0.0.1"), int(settings.get("port") or 5432))
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.close()


@pytest.fixture
def via_proxy(postgres_proxy: TcpProxy) -> Callable[[str], str]:
    """Rewrite a DSN to go through the test's proxy."""
    return lambda dsn: make_conninfo(dsn, host="127.0.0.1", port=str(postgres_proxy.port))


class TcpProxy:
    """Forwards 127.0.0.1:<port> to ``target``. ``stop`` closes the listener and cuts every open
    connection; ``start`` listens again on the same port."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self.port = 0
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
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
