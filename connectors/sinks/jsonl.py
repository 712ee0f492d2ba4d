"""JSON lines file sink: one incident JSON per line, appended and fsync'd (``jitsec.incident/1``)."""

from __future__ import annotations

import os
from pathlib import Path

from jitsec.connectors.sinks.base import SpooledSink
from jitsec.connectors.sinks.spool import Backoff

from jitsec.kernel.records import Incident
from jitsec.kernel.schemas import INCIDENT


class JsonlSink(SpooledSink):
    """Appends each incident version as a line; a reader keeps the highest ``version`` per
    ``incident_id``. The file is opened per delivery, so log rotation (rename) is followed."""

    def __init__(self, path: Path | str, spool_dir: Path | str, *, backoff: Backoff | None = None) -> None:
        self.path = Path(path)
        super().__init__(f"jsonl:{self.path.resolve()}", spool_dir, backoff=backoff)

    def deliver(self, incident: Incident) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as out:
            out.write(INCIDENT.to_json(incident) + "\n")
            out.flush()
            os.fsync(out.fileno())
