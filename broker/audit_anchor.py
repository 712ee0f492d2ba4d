"""Audit anchoring: signed checkpoints of the chain's head, kept outside the store.

The hash chain shows an edited, inserted or reordered record, but not a chain cut short at its tail
or deleted whole: what is left still links. So the broker (its reaper leader) appends, every
``anchor_seconds`` while the chain grows, a checkpoint ``{seq, hash, at, mac}`` of the head to an
anchor file that should live outside the store's reach (another disk, a write-once mount, a log
shipper's input). ``verify_anchor`` then names every checkpointed record the chain no longer holds.
The checkpoints are MACed with the custody's anchor key (derived from the audit key in a file
custody, a key of its own in a token), so they cannot be forged without it.

Lease states are cross-checked too (``verify_leases``): a lease the chain says was revoked or expired
must not be active in the store (a revoked credential set back to active in SQL would introspect
active while the chain verified clean).
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from jitsec.broker.custody.base import MacKey
from jitsec.broker.model import AuditKind, AuditRecord, LeaseState
from jitsec.broker.store.base import Store

log = logging.getLogger("jitsec.broker.audit")
# audit kinds after which a lease is dead for good
TERMINAL_KINDS = frozenset({AuditKind.REVOKE, AuditKind.EXPIRE})


@dataclass(frozen=True, slots=True)
class Checkpoint:
    seq: int
    hash: str
    at: float
    mac: str

    @staticmethod
    def sign(key: MacKey, seq: int, head_hash: str, at: float) -> Checkpoint:
        return Checkpoint(seq, head_hash, round(at, 6), _mac(key, seq, head_hash, round(at, 6)))

    def valid(self, key: MacKey) -> bool:
        return hmac.compare_digest(self.mac, _mac(key, self.seq, self.hash, self.at))

    def to_line(self) -> str:
        return json.dumps({"seq": self.seq, "hash": self.hash, "at": self.at, "mac": self.mac},
                          separators=(",", ":")) + "\n"


def _mac(key: MacKey, seq: int, head_hash: str, at: float) -> str:
    return key.mac(f"{seq}:{head_hash}:{at:.6f}".encode("ascii")).hex()


class AnchorWriter:
    """Appends a checkpoint to ``path`` when the head moved and ``every_seconds`` have passed. Called
    from the reaper leader's passes (one writer among the broker's processes)."""

    def __init__(self, store: Store, anchor_key: MacKey, path: Path, every_seconds: float,
                 clock: Callable[[], float] = time.time) -> None:
        self._store, self._key, self.path = store, anchor_key, path
        self._every, self._clock = every_seconds, clock
        self._last_at = float("-inf")
        self._last_head: tuple[int, str] | None = None
        self._lock = threading.Lock()

    def tick(self) -> bool:
        """Write a checkpoint if due; True if one was written. Errors are logged, never raised: the
        broker keeps working with its anchor unwritable (and says so)."""
        now = self._clock()
        if now - self._last_at < self._every:
            return False
        with self._lock:
            self._last_at = now
            try:
                head = self._store.audit_head()
                if head is None or head == self._last_head:
                    return False
                checkpoint = Checkpoint.sign(self._key, head[0], head[1], now)
                _append(self.path, checkpoint.to_line())
            except OSError as error:
                log.error("audit anchor %s not written: %s", self.path, error.strerror or error)
                return False
            self._last_head = head
            return True


def _append(path: Path, line: str) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(descriptor, line.encode("ascii"))
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def read_checkpoints(path: Path) -> tuple[list[Checkpoint], list[str]]:
    """The anchor file's checkpoints, and a problem per line that is not one."""
    checkpoints: list[Checkpoint] = []
    problems: list[str] = []
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            checkpoints.append(
                Checkpoint(int(data["seq"]), str(data["hash"]), float(data["at"]), str(data["mac"])))
        except (ValueError, KeyError, TypeError):
            problems.append(f"anchor line {number} is not a checkpoint")
    return checkpoints, problems


def verify_anchor(
    key: MacKey, records: Iterable[AuditRecord], checkpoints: Iterable[Checkpoint]
) -> list[str]:
    """Every checkpoint whose record the chain no longer holds (a cut tail, a deleted chain), and every
    checkpoint whose MAC does not hold (forged or edited); ``key`` is the custody's anchor key."""
    held = {record.seq: record.hash for record in records}
    last = max(held, default=0)
    problems: list[str] = []
    for checkpoint in checkpoints:
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(checkpoint.at))
        if not checkpoint.valid(key):
            problems.append(f"anchor checkpoint of seq {checkpoint.seq} ({when}) has a bad MAC: "
                            "forged or edited")
        elif checkpoint.seq not in held:
            cut = "the whole chain is gone" if not held else f"the chain now ends at seq {last}"
            problems.append(f"record seq {checkpoint.seq}, checkpointed at {when}, is missing: {cut} "
                            "(records deleted from the tail)")
        elif held[checkpoint.seq] != checkpoint.hash:
            problems.append(f"record seq {checkpoint.seq} differs from its checkpoint of {when}")
    return problems


def verify_leases(store: Store, records: Iterable[AuditRecord]) -> list[str]:
    """Every lease the chain says was revoked or expired that the store holds as live again."""
    dead = {record.event.lease_id: record for record in records
            if record.event.kind in TERMINAL_KINDS and record.event.lease_id}
    live_again = {lease.lease_id: lease.state  # one read per task, not one per lease
                  for task_id in {record.event.task_id for record in dead.values()}
                  for lease in store.leases_of_task(task_id, (LeaseState.ACTIVE, LeaseState.REVOKING))
                  if lease.lease_id in dead}
    return [f"lease {lease_id} was revoked (audit seq {dead[lease_id].seq}) but the store holds it "
            f"{state.value}: the leases table was edited"
            for lease_id, state in sorted(live_again.items(), key=lambda item: dead[item[0]].seq)]
