"""Credentials issued per second by the signing engines with their key in a PKCS#11 token (SoftHSM2)
against the same engine with the key in a file (the peer, same run): what moving a key into a token
costs.

- jwt: ``JwtEngine.issue`` (claims, header, ES256 signature) with ``keys = "pkcs11:bench"`` against a
  key folder;
- x509: ``X509Engine.issue`` on CSRs made beforehand, with ``ca_key = "pkcs11:…"`` against
  ``state_dir/ca-key.pem`` (the ledger, a SQLite file, is written either way);
- ssh: ``SshEngine.issue`` with an Ed25519 CA key in the token against the key file.

One thread each: a token session is used by one thread at a time, so more threads queue on it. Needs
``softhsm2`` (Debian) and ``jitsec[hsm]``; makes its own token in a temporary directory.

    python -m benchmarks.engine_keys_custody                 # 2000 JWTs, 300 certificates of each kind
    python -m benchmarks.engine_keys_custody --jwts 10000 --certificates 1000
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

from jitsec.broker.signing import SigningKeys

from benchmarks.audit_custody import token_custody


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jwts", type=int, default=2000)
    parser.add_argument("--certificates", type=int, default=300)
    args = parser.parse_args()
    with token_custody() as (directory, custody):
        from jitsec.broker.custody.signers import CustodyKeys  # noqa: PLC0415 - after SOFTHSM2_CONF

        keys = CustodyKeys(custody, directory)
        for kind, count, placements in _cases(directory, args):
            for where, options in placements:
                rate = _rate(kind, options, keys, count)
                print(f"{kind:>4} {where:>5}: {rate:8.0f} issued/s ({count}, 1 thread)")


Case = tuple[str, int, list[tuple[str, dict[str, str]]]]  # engine kind, how many, (file | token, options)


def _cases(directory: Path, args: argparse.Namespace) -> list[Case]:
    krl = str(directory / "revoked.krl")
    return [
        ("jwt", args.jwts, [("file", {"keys": str(directory / "jwt-keys")}),
                            ("token", {"keys": "pkcs11:bench", "ring": str(directory / "ring")})]),
        ("x509", args.certificates, [("file", {"state_dir": str(directory / "x509-file")}),
                                     ("token", {"state_dir": str(directory / "x509-token"),
                                                "ca_key": "pkcs11:bench-x509"})]),
        ("ssh", args.certificates, [("file", {"ca_key": str(directory / "ssh-ca"), "krl_file": krl}),
                                    ("token", {"ca_key": "pkcs11:bench-ssh", "krl_file": krl})]),
    ]


def _rate(kind: str, options: dict[str, str], keys: SigningKeys, count: int) -> float:
    from jitsec.broker.engines.base import EngineSettings, IssueRequest  # noqa: PLC0415
    from jitsec.broker.engines.registry import build_engine  # noqa: PLC0415

    engine = build_engine(kind, EngineSettings(name=kind, options=options, signing_keys=keys))
    material = _agent_material(kind, count)
    scope = {"jwt": "reports:read", "x509": "x509:name:api.internal", "ssh": "ssh:principal:deploy"}[kind]
    start = time.perf_counter()
    for index in range(count):
        engine.issue(IssueRequest(lease_id=f"lse_{index}", agent="bench", task_id="tsk_bench", task_name="b",
                                  scopes=(scope,), ttl_seconds=300, expires_at=time.time() + 300,
                                  public_key=material(index)))
    elapsed = time.perf_counter() - start
    engine.close()
    return count / elapsed


def _agent_material(kind: str, count: int) -> Callable[[int], str]:
    """What the agent sends, made before the clock starts: a CSR (x509), a public key (ssh), nothing (jwt)."""
    if kind == "x509":
        from jitsec.broker.sdk_x509 import KeyRing  # noqa: PLC0415

        csrs = [KeyRing().new_csr() for _ in range(count)]
        return csrs.__getitem__
    if kind == "ssh":
        from jitsec.broker.sdk_ssh import SshKeys  # noqa: PLC0415

        public_keys = [SshKeys().new_public_key() for _ in range(count)]
        return public_keys.__getitem__
    return lambda _: ""


if __name__ == "__main__":
    main()
