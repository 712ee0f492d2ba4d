"""Audit appends per second with the audit key in a PKCS#11 token (SoftHSM2) against the same store
with the key in the config file (the peer, same run): what moving the key into a token costs.

Each round appends ``--records`` audit events, ``--batch`` per transaction, to a fresh SQLite store;
the only difference between the two is the ``MacKey`` (HMAC in the token, or in process). Needs
``softhsm2`` (Debian) and ``jitsec[hsm]``; makes its own token in a temporary directory.

    python -m benchmarks.audit_custody                  # 3000 records, 10 per transaction, 3 rounds
    python -m benchmarks.audit_custody --records 20000 --batch 1
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

MODULES = ("/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so")
PIN = "bench-pin"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with token_custody() as (directory, token):
        from jitsec.broker.custody.base import file_custody  # noqa: PLC0415 - after SOFTHSM2_CONF

        peers = {"file": file_custody(os.urandom(32)).audit, "pkcs11": token.audit}
        for name, rates in ((n, [_round(directory, key, args) for _ in range(args.rounds)])
                            for n, key in peers.items()):
            print(f"{name:>5}: {max(rates):8.0f} audit records/s (best of {args.rounds}; "
                  f"{args.records} records, {args.batch} per transaction)")


@contextmanager
def token_custody() -> Iterator[tuple[Path, Any]]:
    """A temporary folder and the master keys of a fresh SoftHSM2 token in it (a ``Custody``, logged
    in); everything is removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="jitsec-bench-hsm-") as tmp:
        directory = Path(tmp)
        module = temporary_token(directory)
        from jitsec.broker.custody.pkcs11_token import create_token_keys  # noqa: PLC0415 - after SOFTHSM2_CONF
        from jitsec.broker.custody.settings import TokenSettings  # noqa: PLC0415

        custody = create_token_keys(TokenSettings(module=module, token="bench"), PIN)
        try:
            yield directory, custody
        finally:
            custody.close()


def temporary_token(directory: Path) -> str:
    """A SoftHSM2 token labelled ``bench`` (PIN ``PIN``) in ``directory``; returns the module's path.
    Call it before the PKCS#11 library is first loaded in this process."""
    module = next((m for m in MODULES if Path(m).is_file()), None)
    if module is None or shutil.which("softhsm2-util") is None:
        raise SystemExit("softhsm2 is not installed (apt-get install softhsm2)")
    (directory / "tokens").mkdir()
    conf = directory / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {directory / 'tokens'}\nobjectstore.backend = file\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)  # before the library is loaded
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", "bench", "--pin", PIN,
                    "--so-pin", PIN], check=True, capture_output=True)
    return module


def _round(directory: Path, key: object, args: argparse.Namespace) -> float:
    from jitsec.broker.model import AuditEvent, AuditKind  # noqa: PLC0415
    from jitsec.broker.store.sqlite import SQLiteStore  # noqa: PLC0415

    store = SQLiteStore(directory / f"{uuid.uuid4().hex}.db", key)  # type: ignore[arg-type]
    store.migrate()
    events = [AuditEvent(kind=AuditKind.ISSUE, at=time.time(), agent="bench", lease_id=f"lse_{i}")
              for i in range(args.batch)]
    start = time.perf_counter()
    for _ in range(args.records // args.batch):
        store.append_audit(events)
    elapsed = time.perf_counter() - start
    store.close()
    return args.records / elapsed


if __name__ == "__main__":
    main()
