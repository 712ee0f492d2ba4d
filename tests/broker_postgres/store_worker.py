"""A separate broker-store process for the multi-process tests (run by path, not collected).

    python store_worker.py DSN AUDIT_KEY_HEX append N LABEL    append N audit events, one per transaction
    python store_worker.py DSN AUDIT_KEY_HEX reaper            take the reaper lock, say "held", wait
"""

from __future__ import annotations

import sys
import time

from jitsec.broker.model import AuditEvent, AuditKind
from jitsec.broker.store.postgres import PostgresStore


def main(argv: list[str]) -> int:
    dsn, key, mode, *rest = argv
    store = PostgresStore(dsn, bytes.fromhex(key))
    try:
        if mode == "append":
            count, label = int(rest[0]), rest[1]
            for i in range(count):
                store.append_audit([AuditEvent(kind=AuditKind.USE, at=time.time(), agent=label,
                                               detail=f"{label}-{i}")])
        elif mode == "reaper":
            while not store.try_acquire_reaper_lock():
                time.sleep(0.05)
            print("held", flush=True)
            time.sleep(600)
        else:
            raise SystemExit(f"unknown mode {mode!r}")
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
