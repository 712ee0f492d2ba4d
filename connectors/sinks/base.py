"""The common shape of a spooled sink: ``send`` spools the incident's JSON, a thread delivers it."""

from __future__ import annotations

import hashlib
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from jitsec.connectors.sinks.alert import AlertContext
from jitsec.connectors.sinks.spool import Backoff, Spool, SpoolStats

from jitsec.kernel.records import Incident
from jitsec.kernel.schemas import INCIDENT


def spool_path(spool_dir: Path | str, name: str) -> Path:
    """A stable file per sink target, so a restart finds what the previous run left."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-")[:40] or "sink"
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:10]
    return Path(spool_dir) / f"{slug}-{digest}.sqlite"


@dataclass(frozen=True, slots=True)
class SinkStatus:
    """One spooled sink's health, for ``/healthz``, ``/metrics`` and the shutdown report."""

    name: str
    stats: SpoolStats
    spool: Path  # where undelivered alerts wait for the next start


class SpooledSink(ABC):
    """Implements the ``Sink`` protocol over a ``Spool``; subclasses write ``deliver`` only.

    ``deliver`` runs on the spool's thread, oldest incident first, and raises to be retried.
    ``context`` (scanner identity, remediation, console URL) is rendered at delivery, so what waited in
    the spool goes out with the settings of the process that delivers it.
    """

    def __init__(self, name: str, spool_dir: Path | str, *, backoff: Backoff | None = None,
                 context: AlertContext | None = None) -> None:
        self.name = name
        self.context = context or AlertContext()
        self._spool = Spool(spool_path(spool_dir, name), self._deliver_payload, name=name, backoff=backoff)

    @abstractmethod
    def deliver(self, incident: Incident) -> None:
        """Hand one incident to the receiver; raise ``DeliveryError`` (or anything) to retry."""

    def _deliver_payload(self, payload: bytes) -> None:
        self.deliver(INCIDENT.from_json(payload))

    def send(self, incident: Incident) -> None:
        self._spool.put(INCIDENT.to_json(incident).encode("utf-8"))

    def stats(self) -> SpoolStats:
        return self._spool.stats()

    def status(self) -> SinkStatus:
        """Readable after ``close`` too: then what was left undelivered."""
        return SinkStatus(self.name, self._spool.stats(), self._spool.path)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything spooled so far was delivered; False if ``timeout`` ran out."""
        return self._spool.wait_empty(timeout)

    def close(self, timeout: float = 5.0) -> None:
        self._spool.close(timeout)
        self._close_receiver()

    def _close_receiver(self) -> None:  # noqa: B027 - optional hook, most receivers hold nothing
        """Release the receiver connection; override when there is one."""
