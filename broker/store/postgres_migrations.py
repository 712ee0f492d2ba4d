"""Schema of the PostgreSQL store, as numbered migrations applied in order (never edit a released one).

Everything lives in the ``jitsec`` schema so the store can share a database with other applications.
Identifiers sort with ``COLLATE "C"`` so cursor pagination (``lease_id > cursor``) does not depend on
the database's locale. Times are UNIX seconds (``double precision``), as in the model.
"""

from __future__ import annotations

from jitsec.broker.incidents import schema as incident_schema

SCHEMA = "jitsec"

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE jitsec.tasks (
        task_id text COLLATE "C" PRIMARY KEY, agent text NOT NULL, name text NOT NULL,
        scopes text[] NOT NULL, created_at double precision NOT NULL, expires_at double precision NOT NULL,
        grant_sha256 text NOT NULL UNIQUE, grant_expires_at double precision NOT NULL,
        created_by text NOT NULL, redeemed_at double precision, completed_at double precision
    );
    CREATE INDEX tasks_by_agent ON jitsec.tasks (agent);
    CREATE TABLE jitsec.leases (
        lease_id text COLLATE "C" PRIMARY KEY, task_id text NOT NULL, agent text NOT NULL,
        engine text NOT NULL, scopes text[] NOT NULL, issued_at double precision NOT NULL,
        expires_at double precision NOT NULL, fingerprint text NOT NULL UNIQUE, handle text NOT NULL,
        state text NOT NULL CHECK (state IN ('active', 'revoking', 'revoked', 'failed')),
        revoke_reason text, revoke_detail text, revoke_requested_at double precision,
        revoked_at double precision, attempts integer NOT NULL DEFAULT 0,
        next_attempt_at double precision, last_error text, rotated_from text, username text
    );
    CREATE INDEX leases_by_task ON jitsec.leases (task_id);
    CREATE INDEX leases_by_agent ON jitsec.leases (agent);
    CREATE INDEX leases_active_expiry ON jitsec.leases (expires_at) WHERE state = 'active';
    CREATE INDEX leases_revoking_next ON jitsec.leases (next_attempt_at) WHERE state = 'revoking';
    CREATE TABLE jitsec.audit (
        seq bigint PRIMARY KEY, at double precision NOT NULL, kind text NOT NULL,
        principal text NOT NULL, agent text NOT NULL, task_id text NOT NULL, lease_id text NOT NULL,
        engine text NOT NULL, scopes text[] NOT NULL, resource text NOT NULL, detail text NOT NULL,
        prev_hash text NOT NULL, hash text NOT NULL
    );
    CREATE TABLE jitsec.quarantine (agent text PRIMARY KEY, since double precision NOT NULL);
    """,
    incident_schema.POSTGRES,
)
