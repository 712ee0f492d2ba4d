"""The policy a deployment needs for the suite's agents, as a snippet for the broker's config.

The suite's agents are named ``<prefix><run>-<label><n>`` (default prefix ``conformance-``), so one
glob entry covers them. The entry grants exactly what the tests need: two token scopes (8.3 asks for
``conformance:admin`` and expects a refusal), optionally one jwt scope (commented out: it needs a jwt
engine), and, with a database, SELECT and INSERT on one fixture
table (8.3 asks for the other table and expects a refusal).
"""

from __future__ import annotations

from jitsec.conformance.resources import GRANTED_TABLE, SCHEMA

TOKEN_SCOPES = ("conformance:read", "conformance:write")
X509_SCOPE = "x509:name:conformance.invalid"  # a name no real server answers to
SSH_SCOPE = "ssh:principal:jitsec-conformance"  # a user no real server should have
KAFKA_SCOPE = "kafka:topic:jitsec-conformance:READ"  # the login is checked, not the topic


def policy_snippet(agent_prefix: str = "conformance-", database: str | None = None,
                   x509_engine: str | None = None, ssh_engine: str | None = None,
                   kafka_engine: str | None = None) -> str:
    """TOML to append to the broker's config (before any catch-all ``agent = "*"`` entry)."""
    lines = [
        "# jitsec conformance: the test agents (first matching entry wins: keep this before wildcards)",
        "[[policy]]",
        f'agent = "{agent_prefix}*"',
        "max_task_ttl_seconds = 900",
        "",
        "[policy.engines.token]",
        "scopes = [" + ", ".join(_toml_string(s) for s in TOKEN_SCOPES) + "]",
        "default_ttl_seconds = 60",
        "max_ttl_seconds = 600",
        "",
        "# [policy.engines.jwt]  # optional, with an [engines.jwt] section: 8.2 checks a JWT too",
        "# scopes = [" + _toml_string(TOKEN_SCOPES[0]) + "]",
    ]
    if database is not None:
        from jitsec.broker.engines.postgres_scope import PostgresScope, Privilege  # noqa: PLC0415

        scopes = [
            PostgresScope(database, SCHEMA, GRANTED_TABLE, Privilege(p)).render()
            for p in ("SELECT", "INSERT")
        ]
        lines += [
            "",
            "[policy.engines.postgres]  # needs an [engines.postgres] section for this database",
            "scopes = [" + ", ".join(_toml_string(s) for s in scopes) + "]",
            "default_ttl_seconds = 60",
            "max_ttl_seconds = 600",
        ]
    for engine, kind, scope in ((x509_engine, "x509", X509_SCOPE), (ssh_engine, "ssh", SSH_SCOPE),
                                (kafka_engine, "kafka", KAFKA_SCOPE)):
        if engine is not None:
            lines += [
                "",
                f"[policy.engines.{engine}]  # an {kind} engine (docs/engine-{kind}.md)",
                f"scopes = [{_toml_string(scope)}]",
                "default_ttl_seconds = 60",
                "max_ttl_seconds = 600",
            ]
    return "\n".join(lines) + "\n"


def _toml_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
