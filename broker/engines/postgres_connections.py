"""Admin connections to the target cluster, one small idle pool per database.

The engine touches several databases (the admin DSN's own for roles, each scoped database for
grants), so connections are keyed by database name. Connections are autocommit; callers open
``conn.transaction()`` where several statements must stand or fall together. A connection that
raised an ``OperationalError`` is closed rather than returned: the server may be gone.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo


class PostgresUnavailable(Exception):
    """The target cluster cannot be reached now; the operation may succeed later (transient)."""


class DatabaseMissing(Exception):
    """The named database does not exist on the target cluster (permanent)."""


class AdminConnections:
    """Thread-safe per-database pools of autocommit admin connections (no import-time I/O)."""

    def __init__(self, admin_dsn: str, *, connect_timeout: float = 5.0, max_idle: int = 4) -> None:
        self._admin_dsn = admin_dsn
        self._connect_timeout = max(1, round(connect_timeout))
        self._max_idle = max_idle
        self._idle: dict[str, list[psycopg.Connection]] = {}
        self._lock = threading.Lock()
        self.admin_database = str(conninfo_to_dict(admin_dsn).get("dbname") or "postgres")
        user = conninfo_to_dict(admin_dsn).get("user")
        self.admin_user = str(user) if user is not None else None

    def conninfo(self, database: str | None = None, **overrides: str | int | None) -> str:
        """The admin DSN pointed at ``database`` (the admin's own when None)."""
        return make_conninfo(self._admin_dsn, dbname=database or self.admin_database, **overrides)

    @contextmanager
    def connection(self, database: str | None = None) -> Iterator[psycopg.Connection]:
        """An admin connection to ``database``; raises PostgresUnavailable when it cannot connect."""
        key = database or self.admin_database
        conn = self._take(key) or self._open(key)
        healthy = True
        try:
            yield conn
        except psycopg.OperationalError:
            healthy = False
            raise
        finally:
            idle = not conn.closed and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
            if healthy and idle:
                self._give_back(key, conn)
            else:
                conn.close()

    def close(self) -> None:
        with self._lock:
            pools, self._idle = self._idle, {}
        for pool in pools.values():
            for conn in pool:
                conn.close()

    def _take(self, key: str) -> psycopg.Connection | None:
        with self._lock:
            pool = self._idle.get(key)
            while pool:
                conn = pool.pop()
                if not conn.closed:
                    return conn
        return None

    def _give_back(self, key: str, conn: psycopg.Connection) -> None:
        with self._lock:
            pool = self._idle.setdefault(key, [])
            if len(pool) < self._max_idle:
                pool.append(conn)
                return
        conn.close()

    def _open(self, key: str) -> psycopg.Connection:
        try:
            return psycopg.connect(
                self.conninfo(key, connect_timeout=self._connect_timeout),
                autocommit=True,
                application_name="jitsec-broker",
            )
        except psycopg.OperationalError as error:
            if _is_missing_database(error):
                raise DatabaseMissing(f"database {key!r} does not exist on the target cluster") from None
            reason = f"cannot connect to PostgreSQL database {key!r}: {_summary(error)}"
            raise PostgresUnavailable(reason) from None


def _is_missing_database(error: psycopg.OperationalError) -> bool:
    return error.sqlstate == "3D000" or ("database" in str(error) and "does not exist" in str(error))


def _summary(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__
