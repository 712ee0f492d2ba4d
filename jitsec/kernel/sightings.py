"""The fleet's incident wire record: one sighting of one secret by one scanner, as sent to the broker
(``POST /v1/incidents``) and kept in the scanner's outbox until the broker has it. Shared by the
scanner side (the response) and the broker, like the leak records in ``jitsec.kernel.leaks``.

A sighting holds the secret's keyed fingerprint and a redacted preview, never the secret. Its id is
derived from what it describes (``sighting_id``), so sending it twice (an outbox retry, a restart
without a checkpoint, two daemons reading one Kafka record) counts it once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from jitsec.kernel.records import Confidence, ResponseAction, Severity

SIGHTING_PREFIX = "sgt_"
HOST_BOUND_SOURCES = frozenset({"file", "stream"})
"""Sources whose locations name a place on one host (a path, stdin): the same path on two hosts is
two places. Kafka records, Elasticsearch documents and git commits are the same wherever read."""


@dataclass(frozen=True, slots=True)
class Sighting:
    """One secret seen at one place. ``fingerprint`` is the scanner's keyed fingerprint under the key
    named by ``key_id`` (a fleet key: equal on every machine); ``preview`` is already redacted.
    ``action`` and the fields after it say what the scanner's response did about the secret (the
    broker's revocation, when there was one). Times are UNIX seconds (UTC)."""

    sighting_id: str
    fingerprint: str
    key_id: str
    rule_id: str
    description: str
    severity: Severity
    confidence: Confidence
    preview: str
    location: str
    source: str  # the origin's kind: file, stream, git, kafka, elasticsearch
    seen_at: float
    scanner: str
    host: str
    action: ResponseAction = ResponseAction.ALERT_ONLY
    lease_id: str | None = None
    agent: str | None = None
    revoked_at: float | None = None
    latency_ms: float | None = None


def sighting_id(fingerprint: str, source: str, location: str, host: str) -> str:
    """The id of "this secret at this place": equal for every report of it, whoever reads it."""
    place_host = host if source in HOST_BOUND_SOURCES else ""
    material = "\0".join(("jitsec-sighting/1", fingerprint, source, place_host, location))
    return SIGHTING_PREFIX + hashlib.sha256(material.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def key_id_of(key: bytes) -> str:
    """Names a fingerprint key without revealing it (the scanner's ``Fingerprinter.key_id`` too)."""
    return hmac.new(key, b"jitsec fingerprint key id", hashlib.sha256).hexdigest()[:16]


BATCH_BYTES = 48_000  # under the broker's default 64 KiB request limit, with room for the envelope
MAX_BATCH = 1000


def sighting_batches(items: list[dict[str, Any]], max_bytes: int = BATCH_BYTES,
                     max_items: int = MAX_BATCH) -> list[list[dict[str, Any]]]:
    """Encoded sightings split into request-sized batches (by count and JSON size), in order."""
    batches: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    size = 0
    for item in items:
        cost = len(json.dumps(item, ensure_ascii=False).encode()) + 2
        if current and (len(current) >= max_items or size + cost > max_bytes):
            batches.append(current)
            current, size = [], 0
        current.append(item)
        size += cost
    if current:
        batches.append(current)
    return batches
