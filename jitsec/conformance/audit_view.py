"""The broker's audit and store as the suite reads them through ``--config`` (when they are local).

Read-only: the suite opens the store the config names, pages through the audit chain, and looks up
leases of its own tasks. The audit holds no secrets by the broker's design; excerpts are still
rendered from typed fields only.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

from jitsec.broker.audit import iter_records, record_to_dict
from jitsec.broker.audit import verify as verify_chain
from jitsec.broker.config import BrokerConfig, load_config
from jitsec.broker.custody.base import Custody
from jitsec.broker.custody.opening import open_custody
from jitsec.broker.model import AuditRecord, Lease
from jitsec.broker.store.base import Store
from jitsec.broker.store.registry import open_store
from jitsec.conformance.model import AuditExcerpt


@dataclass(frozen=True, slots=True)
class ChainState:
    records: int
    intact: bool
    problems: tuple[str, ...]


class AuditView:
    def __init__(self, config: BrokerConfig, store: Store, custody: Custody) -> None:
        self.config = config
        self._store = store
        self.custody = custody  # its kind shows whether the master keys were used from a token

    @classmethod
    def open(cls, config_path: Path) -> AuditView:
        config = load_config(config_path)
        custody = open_custody(config.keys, config.audit_key)
        try:
            return cls(config, open_store(config.store_url, custody.audit), custody)
        except BaseException:
            custody.close()
            raise

    def close(self) -> None:
        self._store.close()
        self.custody.close()

    @property
    def store_files(self) -> tuple[Path, ...]:
        """The SQLite files behind the store (database, WAL, shared memory); none for PostgreSQL."""
        url = self.config.store_url
        if not url.startswith("sqlite://"):
            return ()
        base = Path(url.removeprefix("sqlite://"))
        return tuple(p for p in (base, Path(f"{base}-wal"), Path(f"{base}-shm")) if p.exists())

    def records(self) -> Iterator[AuditRecord]:
        return iter(iter_records(self._store))

    def of(self, task_ids: Collection[str], agents: Collection[str] = ()) -> tuple[AuditExcerpt, ...]:
        """Records of these tasks, and of these agents (refusals before a task exists carry no task)."""
        tasks, names = set(task_ids), set(agents)
        return tuple(
            excerpt(r)
            for r in self.records()
            if r.event.task_id in tasks or (r.event.agent and r.event.agent in names)
        )

    def leases_of_tasks(self, task_ids: Collection[str]) -> list[Lease]:
        return [lease for task_id in task_ids for lease in self._store.leases_of_task(task_id)]

    def export_text(self, task_ids: Collection[str]) -> str:
        """The audit records and lease rows of these tasks as text, for a secret search when the store
        is not a local file (PostgreSQL)."""
        wanted = set(task_ids)
        lines = [str(record_to_dict(r)) for r in self.records() if r.event.task_id in wanted]
        lines.extend(repr(lease) for lease in self.leases_of_tasks(wanted))
        return "\n".join(lines)

    def chain(self) -> ChainState:
        result = verify_chain(self.custody.audit, self.records())
        return ChainState(result.records, result.ok, tuple(p.describe() for p in result.problems))


def excerpt(record: AuditRecord) -> AuditExcerpt:
    event = record.event
    return AuditExcerpt(
        seq=record.seq,
        at=round(event.at, 3),
        kind=event.kind.value,
        agent=event.agent,
        task_id=event.task_id,
        lease_id=event.lease_id,
        engine=event.engine,
        scopes=tuple(event.scopes),
        detail=event.detail,
    )
