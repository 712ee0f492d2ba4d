"""The tamper-evident audit chain: how a record's hash is computed, and how a chain is verified.

Each record's hash is HMAC-SHA256(audit key, "v2" || seq || previous hash || canonical JSON of the
event). Without the key nobody can forge a record, renumber one or re-chain the tail after an edit;
with it, ``verify`` names the first record that was edited, deleted, inserted or reordered. Chains
written before ``seq`` was in the MAC (version 1: no "v2" prefix, no seq) still verify: a version-1
record is accepted only before the first version-2 record, so a new record cannot be downgraded.
Stores call ``chain_hash`` inside the same transaction that appends, so the chain has exactly one
order even with several broker processes. Limit: removing records from the *end* of the chain is
invisible without an external anchor (``broker.audit_anchor``).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum

from jitsec.broker.custody.base import MacKey, as_mac_key
from jitsec.broker.model import AuditEvent, AuditKind, AuditRecord

GENESIS = "0" * 64


def canonical(event: AuditEvent) -> bytes:
    """The event's bytes as hashed: sorted keys, no whitespace, times to the microsecond."""
    return json.dumps(event_to_dict(event), sort_keys=True, separators=(",", ":")).encode("utf-8")


def event_to_dict(event: AuditEvent) -> dict[str, object]:
    return {
        "kind": event.kind.value,
        "at": round(float(event.at), 6),  # an int time must hash as the float the store reads back
        "principal": event.principal,
        "agent": event.agent,
        "task_id": event.task_id,
        "lease_id": event.lease_id,
        "engine": event.engine,
        "scopes": list(event.scopes),
        "resource": event.resource,
        "detail": event.detail,
    }


def event_from_dict(data: dict[str, object]) -> AuditEvent:
    return AuditEvent(
        kind=AuditKind(data["kind"]),
        at=float(data["at"]),  # type: ignore[arg-type]
        principal=str(data.get("principal", "")),
        agent=str(data.get("agent", "")),
        task_id=str(data.get("task_id", "")),
        lease_id=str(data.get("lease_id", "")),
        engine=str(data.get("engine", "")),
        scopes=tuple(data.get("scopes", ())),  # type: ignore[arg-type]
        resource=str(data.get("resource", "")),
        detail=str(data.get("detail", "")),
    )


def chain_hash(key: MacKey | bytes, prev_hash: str, event: AuditEvent, seq: int) -> str:
    """The hash of record ``seq`` (version 2: the record's number is under the MAC)."""
    return as_mac_key(key).mac(b"v2\x00%d\x00" % seq + prev_hash.encode("ascii") + canonical(event)).hex()


def legacy_chain_hash(key: MacKey | bytes, prev_hash: str, event: AuditEvent) -> str:
    """The version-1 hash (no seq), which records written by older brokers carry."""
    return as_mac_key(key).mac(prev_hash.encode("ascii") + canonical(event)).hex()


def record_to_dict(record: AuditRecord) -> dict[str, object]:
    """One JSON line of ``jitsec audit export``."""
    return {
        "seq": record.seq,
        **event_to_dict(record.event),
        "prev_hash": record.prev_hash,
        "hash": record.hash,
    }


class Tamper(Enum):
    EDITED = "edited"
    DELETED = "deleted"
    INSERTED = "inserted"
    REORDERED = "reordered"


@dataclass(frozen=True, slots=True)
class Problem:
    kind: Tamper
    seq: int  # the record concerned (for DELETED: the first record after the gap)

    def describe(self) -> str:
        match self.kind:
            case Tamper.DELETED:
                return f"record(s) deleted before seq {self.seq}"
            case Tamper.INSERTED:
                return f"record seq {self.seq} was inserted"
            case Tamper.REORDERED:
                return f"record seq {self.seq} is out of order (reordered)"
        return f"record seq {self.seq} was edited"


@dataclass(frozen=True, slots=True)
class Verification:
    records: int
    problems: tuple[Problem, ...]
    head_hash: str

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(key: MacKey | bytes, records: Iterable[AuditRecord]) -> Verification:
    """Walk the chain in ``seq`` order and diagnose every break.

    Records that fail their own MAC were forged or changed: INSERTED if the next record links over
    them, else EDITED. A record whose MAC holds only under the number its links give it (one more
    than its predecessor's) is genuine but renumbered: the links below name the reordering or
    insertion behind it, or it is reported EDITED. Records that pass but do not link to their
    predecessor: DELETED if the record they link to is gone, INSERTED (the predecessor) if they link
    exactly one further back, REORDERED otherwise.
    """
    mac_key = as_mac_key(key)
    chain = list(records)
    hashes = [r.hash for r in chain]
    position = {h: i for i, h in enumerate(hashes)}
    first_holder = {h: i for i, h in reversed(list(enumerate(hashes)))}
    authentic, renumbered = _authenticate(mac_key, chain, first_holder)
    found: dict[int, Problem] = {}

    def expected_prev(i: int) -> str:
        return hashes[i - 1] if i > 0 else GENESIS

    for i, record in enumerate(chain):
        if not authentic[i]:
            nxt = chain[i + 1] if i + 1 < len(chain) else None
            skipped = nxt is not None and nxt.prev_hash == expected_prev(i)
            found[i] = Problem(Tamper.INSERTED if skipped else Tamper.EDITED, record.seq)
            continue
        if record.prev_hash == expected_prev(i):
            continue
        where = position.get(record.prev_hash, -1 if record.prev_hash != GENESIS else None)
        if where == -1:
            found[i] = Problem(Tamper.DELETED, record.seq)
        elif where == i - 2 or (where is None and i == 1):
            previous = found.get(i - 1)
            if previous is None:
                found[i - 1] = Problem(Tamper.INSERTED, chain[i - 1].seq)
            elif previous.kind is not Tamper.INSERTED:
                found[i] = Problem(Tamper.REORDERED, record.seq)
        else:
            found[i] = Problem(Tamper.REORDERED, record.seq)
    if not found and renumbered:  # genuine records in their order, but their numbers were changed
        found[renumbered[0]] = Problem(Tamper.EDITED, chain[renumbered[0]].seq)
    problems = [found[i] for i in sorted(found)]
    head = hashes[-1] if hashes else GENESIS
    return Verification(records=len(chain), problems=tuple(problems), head_hash=head)


def _authenticate(
    key: MacKey, chain: Sequence[AuditRecord], position: dict[str, int]
) -> tuple[list[bool], list[int]]:
    """Which records carry a MAC made with the key, and which of those were renumbered since."""
    derived: dict[int, int | None] = {}

    def number_from_links(i: int) -> int | None:  # 1 + the predecessor's, followed back to genesis
        trail: list[int] = []
        seen: set[int] = set()
        j, base = i, None
        while j not in derived:
            trail.append(j)
            seen.add(j)
            prev = chain[j].prev_hash
            if prev == GENESIS:
                base = 0
                break
            k = position.get(prev)
            if k is None or k in seen:
                break
            j = k
        else:
            base = derived[j]
        for step in reversed(trail):
            base = None if base is None else base + 1
            derived[step] = base
        return derived[i]

    authentic, renumbered, legacy_allowed = [], [], True
    for i, record in enumerate(chain):
        if hmac.compare_digest(chain_hash(key, record.prev_hash, record.event, record.seq), record.hash):
            authentic.append(True)
            legacy_allowed = False
            continue
        number = number_from_links(i)
        if number is not None and number != record.seq and hmac.compare_digest(
                chain_hash(key, record.prev_hash, record.event, number), record.hash):
            authentic.append(True)
            renumbered.append(i)
            legacy_allowed = False
            continue
        authentic.append(legacy_allowed and hmac.compare_digest(
            legacy_chain_hash(key, record.prev_hash, record.event), record.hash))
    return authentic, renumbered


def iter_records(store: object, page: int = 5000) -> Iterable[AuditRecord]:
    """Every record of a store's chain in ``seq`` order (``store`` has ``audit_records``)."""
    after = 0
    while True:
        batch = store.audit_records(after_seq=after, limit=page)  # type: ignore[attr-defined]
        yield from batch
        if len(batch) < page:
            return
        after = batch[-1].seq
