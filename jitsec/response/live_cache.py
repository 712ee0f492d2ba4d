"""The scanner's local cache of live broker fingerprints (``GET /v1/fingerprints``).

Lets the engine recognise a broker-issued secret whose text carries no prefix: a candidate whose
SHA-256's ``live_lookup`` is found here is a confirmed live credential (the broker publishes lookups,
never the fingerprints a leak report must carry). The cache is rebuilt by paging through the broker's live
leases every ``refresh_seconds`` and swapped in whole, so lookups never lock; a fingerprint whose
expiry has passed, or that the responder saw revoked, is treated as absent at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

from jitsec.kernel.credential_format import live_lookup
from jitsec.kernel.leaks import FingerprintPage

log = logging.getLogger(__name__)
MAX_PAGES = 10_000


class FingerprintFeed(Protocol):
    def live_fingerprints(self, cursor: str | None = None) -> FingerprintPage: ...


class LiveFingerprintCache:
    """``sha256 in cache`` (or ``cache.is_live(sha256)``): thread-safe, non-blocking lookups."""

    def __init__(self, feed: FingerprintFeed, *, refresh_seconds: float = 30.0,
                 clock: Callable[[], float] = time.time) -> None:
        self._feed = feed
        self._refresh_seconds = refresh_seconds
        self._clock = clock
        self._expiry: dict[str, float] = {}
        self._gone: set[str] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.refreshed_at: float | None = None
        self.last_error: str | None = None

    def __contains__(self, sha256: object) -> bool:
        return isinstance(sha256, str) and self.is_live(sha256)

    def __len__(self) -> int:
        return len(self._expiry)

    def is_live(self, sha256: str) -> bool:
        """Whether the secret whose hex SHA-256 this is belongs to a live lease."""
        try:
            lookup = live_lookup(sha256)
        except ValueError:  # not hex
            return False
        expires_at = self._expiry.get(lookup)
        return expires_at is not None and expires_at > self._clock() and lookup not in self._gone

    def discard(self, sha256: str) -> None:
        """Forget a fingerprint the broker reported revoked or dead (until the next refresh drops it)."""
        self._gone.add(live_lookup(sha256))

    def refresh(self) -> int:
        """Page through every live fingerprint and swap the new set in; returns its size."""
        fresh: dict[str, float] = {}
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            page = self._feed.live_fingerprints(cursor)
            fresh.update((entry.lookup, entry.expires_at) for entry in page.entries)
            cursor = page.next_cursor
            if cursor is None:
                break
        self._expiry = fresh
        self._gone = set()
        self.refreshed_at = self._clock()
        return len(fresh)

    def start(self) -> None:
        """Refresh now (best effort) and then every ``refresh_seconds`` on a daemon thread."""
        self._refresh_logged()
        self._thread = threading.Thread(target=self._run, name="live-fingerprints", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self._refresh_seconds):
            self._refresh_logged()

    def _refresh_logged(self) -> None:
        try:
            self.refresh()
            self.last_error = None
        except Exception as error:  # the broker may be down: keep the last good set, try again later
            self.last_error = f"{type(error).__name__}: {error}"
            log.warning("live fingerprint refresh failed, keeping %d cached: %s", len(self), self.last_error)
