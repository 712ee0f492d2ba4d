"""The tamper-evident audit chain: how a record's hash is computed, and how a chain is verified.

Each record's hash is HMAC-SHA256(audit key, previous hash || canonical JSON of the event). Without
the key nobody can forge a record or re-chain the tail after an edit; with it, ``verify`` names the
first record that was edited, deleted, inserted or reordered. Stores call ``chain_hash`` inside the
same transaction that appends, so the chain has exactly one order even with several broker processes.
Limit: removing records from the *end* of the chain is invisible without an external anchor (export
and keep the head hash elsewhere).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from jitsec.broker.model import AuditEvent, AuditKind, AuditRecord

GENESIS = "0" * 64


def canonical(event: AuditEvent) -> bytes:
    """The event's bytes as hashed: sorted keys, no whitespace, times to the microsecond."""
    return json.dumps(event_to_dict(event), sort_keys=True, separators=(",", ":")).encode("utf-8")


def event_to_dict(event: AuditEvent) -> dict[str, object]:
    return {
        "kind": event.kind.value,
        "at": round(event.at, 6),
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


def chain_hash(key: bytes, prev_hash: str, event: AuditEvent) -> str:
    return hmac.new(key, prev_hash.encode("ascii") + canonical(event), hashlib.sha256).hexdigest()


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


def verify(key: bytes, records: Iterable[AuditRecord]) -> Verification:
    """Walk the chain in ``seq`` order and diagnose every break.

    Records that fail their own HMAC were forged or changed: INSERTED if the next record links over
    them, else EDITED. Records that pass it but do not link to their predecessor: DELETED if the
    record they link to is gone, INSERTED (the predecessor) if they link exactly one further back,
    REORDERED otherwise.
    """
    chain = list(records)
    hashes = [r.hash for r in chain]
    position = {h: i for i, h in enumerate(hashes)}
    found: dict[int, Problem] = {}

    def expected_prev(i: int) -> str:
        return hashes[i - 1] if i > 0 else GENESIS

    for i, record in enumerate(chain):
        if chain_hash(key, record.prev_hash, record.event) != record.hash:
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
    problems = [found[i] for i in sorted(found)]
    head = hashes[-1] if hashes else GENESIS
    return Verification(records=len(chain), problems=tuple(problems), head_hash=head)


def iter_records(store: object, page: int = 5000) -> Iterable[AuditRecord]:
    """Every record of a store's chain in ``seq`` order (``store`` has ``audit_records``)."""
    after = 0
    while True:
        batch = store.audit_records(after_seq=after, limit=page)  # type: ignore[attr-defined]
        yield from batch
        if len(batch) < page:
            return
        after = batch[-1].seq
