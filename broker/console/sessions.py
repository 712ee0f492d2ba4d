"""Console sessions: held on the server, named to the browser by a random id in an HttpOnly cookie.

The cookie holds nothing but a 256-bit random id; the table is keyed by its SHA-256, so a dump of the
table cannot be replayed as cookies. A session ends at sign-out, after ``idle_seconds`` without a
request, or ``max_seconds`` after sign-in, whichever comes first. Each session has its own CSRF token
(random, compared in constant time), so a form posted from another site, or replayed from another
session, is refused.

Sessions live in the serving process: with several uvicorn workers a browser must reach the same
worker (sticky sessions) or sign in again (docs/console.md). Thread-safe.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    idle_seconds: float = 30 * 60
    max_seconds: float = 8 * 3600
    max_sessions: int = 10_000  # beyond it the least recently used session is ended


@dataclass(frozen=True, slots=True)
class Session:
    """One signed-in principal. ``csrf`` goes into every form the session is shown."""

    principal: str
    role: str
    key_sha256: str  # the principal's key, as the config holds it: revoking the key ends the session
    csrf: str
    created_at: float
    last_seen: float


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8", "replace")).hexdigest()


class SessionBook:
    """Opens, finds (touching the idle clock) and ends sessions."""

    def __init__(self, policy: SessionPolicy | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.policy = policy or SessionPolicy()
        self._clock = clock
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()

    def open(self, principal: str, role: str, key_sha256: str) -> tuple[str, Session]:
        """A new session; returns the id for the cookie (shown once, kept only as its digest)."""
        session_id = secrets.token_urlsafe(32)
        now = self._clock()
        session = Session(principal=principal, role=role, key_sha256=key_sha256,
                          csrf=secrets.token_urlsafe(32), created_at=now, last_seen=now)
        with self._lock:
            self._sessions[_digest(session_id)] = session
            while len(self._sessions) > self.policy.max_sessions:
                self._sessions.popitem(last=False)
        return session_id, session

    def find(self, session_id: str | None, touch: bool = True) -> Session | None:
        """The live session for ``session_id``; None when unknown or over. ``touch`` restarts its
        idle clock: a person's request does, a page's own polling does not (an open tab left alone
        must still time out)."""
        if not session_id or len(session_id) > 128:
            return None
        key = _digest(session_id)
        now = self._clock()
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                return None
            if (now - session.last_seen > self.policy.idle_seconds
                    or now - session.created_at > self.policy.max_seconds):
                del self._sessions[key]
                return None
            if touch:
                session = replace(session, last_seen=now)
                self._sessions[key] = session
                self._sessions.move_to_end(key)
            return session

    def end(self, session_id: str | None) -> None:
        if session_id:
            with self._lock:
                self._sessions.pop(_digest(session_id), None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)
