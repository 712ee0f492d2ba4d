"""The incident tables, one migration per store (appended to each store's numbered migrations).

Incidents are listed newest first by ``seq`` (insertion order), so the list's indexes pair each
filter column with ``seq``: a filtered page is an index range walked backwards, whatever the table's
size (agent and assignee are partial: most incidents have neither, and cost those indexes nothing).
Sightings are keyed by their id (the idempotency of ``POST /v1/incidents``), timelines by an
increasing entry number per store.
"""

from __future__ import annotations

_INDEXES = """
    CREATE INDEX incidents_by_status ON {p}incidents (status, seq);
    CREATE INDEX incidents_by_severity ON {p}incidents (severity, seq);
    CREATE INDEX incidents_by_rule ON {p}incidents (rule_id, seq);
    CREATE INDEX incidents_by_agent ON {p}incidents (agent, seq) WHERE agent IS NOT NULL;
    CREATE INDEX incidents_by_assignee ON {p}incidents (assignee, seq) WHERE assignee IS NOT NULL;
    CREATE INDEX incident_sightings_by_incident ON {p}incident_sightings (incident_id, source);
    CREATE INDEX incident_timeline_by_incident ON {p}incident_timeline (incident_id, entry);
"""

SQLITE = """
    CREATE TABLE incidents (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, incident_id TEXT NOT NULL UNIQUE,
        fingerprint TEXT NOT NULL UNIQUE, key_id TEXT NOT NULL, rule_id TEXT NOT NULL,
        description TEXT NOT NULL, severity TEXT NOT NULL, confidence TEXT NOT NULL, preview TEXT NOT NULL,
        status TEXT NOT NULL, first_seen REAL NOT NULL, last_seen REAL NOT NULL,
        sightings INTEGER NOT NULL, action TEXT NOT NULL, lease_id TEXT, agent TEXT, revoked_at REAL,
        latency_ms REAL, assignee TEXT, status_by TEXT, status_at REAL, status_reason TEXT,
        created_at REAL NOT NULL, updated_at REAL NOT NULL
    );
    CREATE TABLE incident_sightings (
        sighting_id TEXT PRIMARY KEY, incident_id TEXT NOT NULL, location TEXT NOT NULL,
        source TEXT NOT NULL, seen_at REAL NOT NULL, scanner TEXT NOT NULL, host TEXT NOT NULL,
        reported_by TEXT NOT NULL, received_at REAL NOT NULL, action TEXT NOT NULL
    );
    CREATE TABLE incident_timeline (
        entry INTEGER PRIMARY KEY AUTOINCREMENT, incident_id TEXT NOT NULL, at REAL NOT NULL,
        kind TEXT NOT NULL, actor TEXT NOT NULL, text TEXT NOT NULL
    );
""" + _INDEXES.format(p="")

POSTGRES = """
    CREATE TABLE jitsec.incidents (
        seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, incident_id text COLLATE "C" NOT NULL UNIQUE,
        fingerprint text COLLATE "C" NOT NULL UNIQUE, key_id text NOT NULL, rule_id text NOT NULL,
        description text NOT NULL, severity text NOT NULL, confidence text NOT NULL, preview text NOT NULL,
        status text NOT NULL CHECK (status IN ('open', 'acknowledged', 'resolved', 'false_positive')),
        first_seen double precision NOT NULL, last_seen double precision NOT NULL,
        sightings bigint NOT NULL, action text NOT NULL, lease_id text, agent text,
        revoked_at double precision, latency_ms double precision, assignee text, status_by text,
        status_at double precision, status_reason text, created_at double precision NOT NULL,
        updated_at double precision NOT NULL
    );
    CREATE TABLE jitsec.incident_sightings (
        sighting_id text COLLATE "C" PRIMARY KEY, incident_id text COLLATE "C" NOT NULL,
        location text NOT NULL, source text NOT NULL, seen_at double precision NOT NULL,
        scanner text NOT NULL, host text NOT NULL, reported_by text NOT NULL,
        received_at double precision NOT NULL, action text NOT NULL
    );
    CREATE TABLE jitsec.incident_timeline (
        entry bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, incident_id text COLLATE "C" NOT NULL,
        at double precision NOT NULL, kind text NOT NULL, actor text NOT NULL, text text NOT NULL
    );
""" + _INDEXES.format(p="jitsec.")
