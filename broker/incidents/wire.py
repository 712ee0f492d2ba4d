"""The JSON of the incident API, one codec per record (``jitsec.kernel.codec``), shared by the API,
the client and the CLI: enums as their values, times as UNIX seconds."""

from __future__ import annotations

from jitsec.broker.incidents.model import FleetIncident, IncidentDetail, IngestOutcome

from jitsec.kernel.codec import Codec

FLEET_INCIDENT: Codec[FleetIncident] = Codec(FleetIncident, "jitsec.fleet-incident/1")
INCIDENT_DETAIL: Codec[IncidentDetail] = Codec(IncidentDetail, "jitsec.fleet-incident-detail/1")
INGEST_OUTCOME: Codec[IngestOutcome] = Codec(IngestOutcome, "jitsec.sighting-outcome/1")
