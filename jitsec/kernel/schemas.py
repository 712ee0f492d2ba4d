"""The codec of each record that leaves a process (alerts, spools, the incident book, the leak outbox),
with its schema id. Bump a schema's version when a field changes meaning, not when one is added."""

from __future__ import annotations

from jitsec.kernel.codec import Codec
from jitsec.kernel.records import Finding, Incident
from jitsec.kernel.sightings import Sighting

INCIDENT: Codec[Incident] = Codec(Incident, "jitsec.incident/1")
FINDING: Codec[Finding] = Codec(Finding, "jitsec.finding/1")
SIGHTING: Codec[Sighting] = Codec(Sighting, "jitsec.sighting/1")
