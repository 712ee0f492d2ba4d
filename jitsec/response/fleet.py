"""The scanner's side of the fleet's incidents: every sighting goes to the broker
(``POST /v1/incidents``) through a durable outbox in the state directory, and one fingerprint key for
the whole fleet.

- ``FleetReporter.report`` appends the chunk's sightings to the outbox (a ``Spool``: SQLite, fsync'd)
  and returns; a delivery thread sends them in order and retries with backoff while the broker is
  away. Nothing is lost (what is not delivered at exit stays on disk for the next run) and nothing is
  counted twice: a sighting's id names the secret and the place (``jitsec.kernel.sightings``), and
  the broker keeps each id once. A sighting already sent is sent again only with news (its response
  changed, e.g. pending → revoked).
- ``fleet_fingerprinter``: the key scanners fingerprint with, from the broker (scanner role) once,
  then from its 0600 copy in the state directory (a hook pays no request; a scanner started while
  the broker is away still uses it). A team's own ``JITSEC_FINGERPRINT_KEY`` wins.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from jitsec.connectors.sinks.spool import Backoff, PermanentDeliveryError, Spool
from jitsec.kernel.ports import SightingReporter
from jitsec.kernel.records import (
    ElasticsearchOrigin,
    FileOrigin,
    Finding,
    GitOrigin,
    KafkaOrigin,
    Origin,
    ResponseAction,
)
from jitsec.kernel.schemas import SIGHTING
from jitsec.kernel.sightings import Sighting, sighting_id
from jitsec.response.incidents import Resolution
from jitsec.scanner.fingerprint import KEY_ENV, Fingerprinter

log = logging.getLogger(__name__)

OUTBOX_FILE = "incident-outbox.sqlite"
FLEET_KEY_FILE = "fleet-fingerprint.key"
SCANNER_ENV = "JITSEC_SCANNER_NAME"  # how this scanner is named in its sightings (default "jitsec")
REMEMBERED = 100_000  # sightings this process already queued, with what they said (bounded)
_RETRYABLE_STATUS = {401, 403, 408, 425, 429}


class KeySource(Protocol):
    def fingerprint_key(self) -> bytes: ...


def source_of(origin: Origin) -> str:
    match origin:
        case FileOrigin():
            return "file"
        case GitOrigin():
            return "git"
        case KafkaOrigin():
            return "kafka"
        case ElasticsearchOrigin():
            return "elasticsearch"
    return "stream"


class FleetReporter:
    """Thread-safe. ``scanner`` and ``host`` name this scanner in every sighting; ``key_id`` names
    the key of the findings' fingerprints."""

    def __init__(self, reporter: SightingReporter, state_dir: Path | str, *, key_id: str,
                 scanner: str | None = None, host: str | None = None, backoff: Backoff | None = None) -> None:
        self._reporter = reporter
        self.key_id = key_id
        self.scanner = scanner or os.environ.get(SCANNER_ENV) or "jitsec"
        self.host = host or socket.gethostname()
        self._said: OrderedDict[str, tuple[object, ...]] = OrderedDict()
        self._lock = threading.Lock()
        self._outbox = Spool(Path(state_dir) / OUTBOX_FILE, self._deliver, name="incident-outbox",
                             backoff=backoff or Backoff(initial=0.2, maximum=5.0))

    def sighting(self, finding: Finding, location: str, resolution: Resolution, seen_at: float) -> Sighting:
        source = source_of(finding.origin)
        revoked = resolution.action is ResponseAction.REVOKED
        return Sighting(
            sighting_id(finding.fingerprint, source, location, self.host), finding.fingerprint, self.key_id,
            finding.rule_id, finding.description, finding.severity, finding.confidence, finding.preview,
            location, source, seen_at, self.scanner, self.host, resolution.action, resolution.lease_id,
            resolution.agent, resolution.revoked_at if revoked else None,
            resolution.latency_ms if revoked else None,
        )

    def report(self, sightings: Sequence[Sighting]) -> int:
        """Queue what is new (durably) and return how many were queued; sends happen in the background."""
        fresh: list[Sighting] = []
        with self._lock:
            for seen in sightings:
                said = (seen.action, seen.lease_id, seen.revoked_at)
                if self._said.get(seen.sighting_id) == said:
                    continue
                self._said[seen.sighting_id] = said
                self._said.move_to_end(seen.sighting_id)
                while len(self._said) > REMEMBERED:
                    self._said.popitem(last=False)
                fresh.append(seen)
        if fresh:
            self._outbox.put(json.dumps([SIGHTING.to_dict(s) for s in fresh]).encode())
        return len(fresh)

    def _deliver(self, payload: bytes) -> None:
        sightings = [SIGHTING.from_dict(item) for item in json.loads(payload)]
        try:
            self._reporter.report_sightings(sightings)
        except Exception as error:
            status = getattr(error, "status", None)
            if isinstance(status, int) and 400 <= status < 500 and status not in _RETRYABLE_STATUS:
                raise PermanentDeliveryError(f"{type(error).__name__}: {str(error)[:200]}") from None
            raise

    def pending(self) -> int:
        return self._outbox.stats().pending

    def wait_delivered(self, timeout: float) -> bool:
        return self._outbox.wait_empty(timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what can be within ``timeout``; the rest stays on disk for the next run."""
        self._outbox.close(timeout)


def fleet_fingerprinter(broker: KeySource, state_dir: Path | str, *,
                        env: Mapping[str, str] | None = None,
                        warn: Callable[[str], None] = log.warning) -> Fingerprinter | None:
    """The fleet's fingerprinter: None when the team set its own key (``JITSEC_FINGERPRINT_KEY``)
    or when neither the broker nor the cache has one (the local key then stays, with a warning)."""
    env = os.environ if env is None else env
    if env.get(KEY_ENV):
        return None
    cached = Path(state_dir) / FLEET_KEY_FILE
    with contextlib.suppress(OSError, ValueError):
        return Fingerprinter(bytes.fromhex(cached.read_text(encoding="ascii").strip()), shared=True)
    try:
        key = broker.fingerprint_key()
    except Exception as error:
        warn(f"the broker did not give the fleet fingerprint key ({type(error).__name__}) and none is "
             "cached: this scanner's incidents will not match other machines' until it can")
        return None
    _save(cached, key)
    return Fingerprinter(key, shared=True)


def _save(path: Path, key: bytes) -> None:
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            handle.write(key.hex() + "\n")
