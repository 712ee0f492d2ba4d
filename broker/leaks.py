"""Leak reports: the broker's side of the loop (``POST /v1/leaks``, ``GET /v1/fingerprints``).

A scanner reports SHA-256 fingerprints of candidate secrets, never the secrets, with where it saw
them. For each: a live lease is revoked at once (reason ``leak``, the location in the detail and in a
``leak`` audit record); a lease already revoked or expired is reported ``dead``; a fingerprint no
lease has is ``unknown``. ``on_leak`` widens the blast radius per request: ``lease`` (default),
``task`` (complete the leaking lease's task: every lease of it dies) or ``agent`` (quarantine the
agent: every lease of every task of it dies, and it may not start new tasks until released).

The wire records live in the kernel (``jitsec.kernel.leaks``), shared with the scanner side; this
module holds their validation and the settings; the broker's handling of a report is
``broker.leak_desk.LeakDesk``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import regex
from jitsec.broker.errors import BadRequest

from jitsec.kernel.leaks import (  # noqa: F401 - the broker's modules import them from here
    FingerprintEntry,
    FingerprintPage,
    LeakReport,
    LeakScope,
    LeakStatus,
    LeakVerdict,
)

MAX_BATCH = 1000
MAX_LOCATION_CHARS = 1024
DEFAULT_PAGE = 1000  # fingerprints per page of ``GET /v1/fingerprints``
MAX_PAGE = 5000
_SHA256 = regex.compile(r"[0-9a-f]{64}")


def _clean_location(text: str) -> str:
    """Locations are shown in audit and alerts: printable, one line, bounded."""
    cleaned = "".join(ch if ch.isprintable() else "?" for ch in text)
    return cleaned[:MAX_LOCATION_CHARS]


def parse_reports(body: Any) -> tuple[list[LeakReport], LeakScope | None]:
    """Validate a ``POST /v1/leaks`` body; ``BadRequest`` names the bad item and field."""
    if not isinstance(body, dict) or not isinstance(body.get("leaks"), list):
        raise BadRequest("body must be an object with a 'leaks' list")
    items = body["leaks"]
    if not 1 <= len(items) <= MAX_BATCH:
        raise BadRequest(f"'leaks' must hold 1 to {MAX_BATCH} items, not {len(items)}")
    scope = None
    if body.get("on_leak") is not None:
        try:
            scope = LeakScope(body["on_leak"])
        except ValueError:
            raise BadRequest("'on_leak' must be one of lease, task, agent") from None
    reports = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise BadRequest(f"leaks[{index}] must be an object")
        fingerprint = item.get("fingerprint")
        if not isinstance(fingerprint, str) or not _SHA256.fullmatch(fingerprint):
            raise BadRequest(
                f"leaks[{index}].fingerprint must be 64 lowercase hex characters "
                "(the SHA-256 of the secret, never the secret)"
            )
        location = item.get("location", "")
        rule_id = item.get("rule_id", "")
        seen_at = item.get("seen_at")
        if not isinstance(location, str) or not isinstance(rule_id, str):
            raise BadRequest(f"leaks[{index}].location and .rule_id must be strings")
        if seen_at is not None and (isinstance(seen_at, bool) or not isinstance(seen_at, int | float)):
            raise BadRequest(f"leaks[{index}].seen_at must be a number (UNIX seconds)")
        reports.append(
            LeakReport(
                fingerprint,
                _clean_location(location),
                _clean_location(rule_id)[:128],
                float(seen_at) if seen_at is not None else None,
            )
        )
    return reports, scope


def reports_body(reports: Sequence[LeakReport], on_leak: LeakScope | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"leaks": [report.to_json() for report in reports]}
    if on_leak is not None:
        body["on_leak"] = on_leak.value
    return body


@dataclass(frozen=True, slots=True)
class LeakSettings:
    """The broker's leak policy (``[leaks]``).

    ``default_scope`` is what a leaked live credential costs, and the most a reporter may ask for: a
    request's ``on_leak`` may narrow it, only an admin's may widen it. A leaked *task token* always
    ends its whole task (whoever holds it could ask for more secrets). ``budget`` caps the leases
    one principal's reports may revoke per ``budget_window_seconds`` (0: no cap); admins have none.
    """

    default_scope: LeakScope = LeakScope.LEASE
    budget: int = 200
    budget_window_seconds: float = 3600.0


SCOPE_RANK = {LeakScope.LEASE: 0, LeakScope.TASK: 1, LeakScope.AGENT: 2}


BATCH_BYTES = 48_000  # under the broker's default 64 KiB request limit, with room for JSON overhead


def leak_batches(reports: Sequence[LeakReport], max_items: int = MAX_BATCH,
                 max_bytes: int = BATCH_BYTES) -> list[list[LeakReport]]:
    """Split reports into request-sized batches (by count and by estimated JSON size), in order."""
    batches: list[list[LeakReport]] = []
    current: list[LeakReport] = []
    size = 0
    for report in reports:
        cost = 160 + len(report.location.encode()) * 2 + len(report.rule_id.encode()) * 2
        if current and (len(current) >= max_items or size + cost > max_bytes):
            batches.append(current)
            current, size = [], 0
        current.append(report)
        size += cost
    if current:
        batches.append(current)
    return batches
