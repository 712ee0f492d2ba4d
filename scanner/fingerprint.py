"""Fingerprints for findings, baselines and alerts: every scheme in one place.

- ``Fingerprinter``: HMAC-SHA256 of a secret. An unkeyed hash of a low-entropy third-party password can
  be brute-forced from a report; an HMAC cannot without the key. The key lives in a 0600 file (created
  on first use, so it differs per machine) or comes from ``JITSEC_FINGERPRINT_KEY`` (hex, or any string
  of at least 16 characters), a key a team or fleet shares: then fingerprints are equal everywhere.
- ``context_digest`` and ``partial_fingerprints``: what identifies a finding across runs and machines
  in SARIF. Built from the rule id, the portable path and the finding's line (256 bytes either side
  at most) with every secret found on it masked: no material of any finding's secret. A secret on
  the same line that no rule finds stays in the input, so guessing the whole line could confirm it.
- ``SecretKdf``: a salted scrypt of a secret, for baselines made without a shared key. Equal on every
  machine that has the baseline (the salt is stored in it), and deliberately slow (about 70 ms and
  16 MiB a guess), so testing a password list against a published baseline costs real time.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from jitsec.kernel.records import FileOrigin, Finding, GitOrigin, Origin
from jitsec.kernel.sightings import key_id_of

PREFIX = "hmac-sha256:"
KEY_ENV = "JITSEC_FINGERPRINT_KEY"
KEY_BYTES = 32


class FingerprintKeyError(RuntimeError):
    """The fingerprint key could not be read or created."""


def default_key_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    home = env.get("JITSEC_HOME")
    base = Path(home) if home else Path.home() / ".config" / "jitsec"
    return base / "fingerprint.key"


class Fingerprinter:
    """HMAC-SHA256 of a secret under a key; safe to write to reports and baselines. ``shared`` says the
    key came from ``JITSEC_FINGERPRINT_KEY`` (a team's or fleet's), not from this machine's key file."""

    __slots__ = ("_key", "shared")

    def __init__(self, key: bytes, *, shared: bool = False) -> None:
        if len(key) < 16:
            raise ValueError("a fingerprint key needs at least 16 bytes")
        self._key = key
        self.shared = shared

    @property
    def key_id(self) -> str:
        """Names the key without revealing it: baselines made under a shared key record it, so a scan
        under another key can say that their entries cannot match instead of silently matching none."""
        return key_id_of(self._key)

    def fingerprint(self, secret: str) -> str:
        digest = hmac.new(self._key, secret.encode("utf-8", "surrogatepass"), hashlib.sha256)
        return PREFIX + digest.hexdigest()

    def __repr__(self) -> str:
        return "Fingerprinter(key=<hidden>)"

    @classmethod
    def load_or_create(
        cls, path: Path | None = None, *, env: Mapping[str, str] | None = None
    ) -> Fingerprinter:
        """The key from ``JITSEC_FINGERPRINT_KEY``, else from ``path`` (default under ``$JITSEC_HOME`` or
        ``~/.config/jitsec/``), creating that file with mode 0600 when missing."""
        env = os.environ if env is None else env
        override = env.get(KEY_ENV)
        if override:
            return cls(_key_from_text(override), shared=True)
        path = path or default_key_path(env)
        try:
            return cls(bytes.fromhex(path.read_text(encoding="ascii").strip()))
        except FileNotFoundError:
            pass
        except (OSError, ValueError) as error:
            raise FingerprintKeyError(f"cannot read fingerprint key {path}: {error}") from error
        key = secrets.token_bytes(KEY_BYTES)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process created it first: use theirs
            return cls.load_or_create(path, env={})
        except OSError as error:
            raise FingerprintKeyError(f"cannot create fingerprint key {path}: {error}") from error
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            handle.write(key.hex() + "\n")
        return cls(key)


def _key_from_text(text: str) -> bytes:
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = text.encode("utf-8")
    if len(key) < 16:
        raise FingerprintKeyError(f"{KEY_ENV} must hold at least 16 bytes (32 hex digits)")
    return key


# -- portable fingerprints: equal on every machine ----------------------------------------------------

class SecretHasher(Protocol):
    """Gives a finding its ``secret_hash`` while the scanner still holds the secret (portable
    baselines): the slow hash of ``secret`` when a baseline wants it, else None. Thread-safe."""

    def digest(self, rule_id: str, origin: Origin, secret: str) -> str | None: ...


CONTEXT_SCHEME = "jitsecContext/v1"
_SPACES = re.compile(rb"\s+")
_MASK = b"\x00"


def context_digest(line: bytes, spans: Sequence[tuple[int, int]]) -> str:
    """SHA-256 of a finding's line (bytes, without its newline) with every ``(start, end)`` span (the
    secrets found on it, positions within ``line``) replaced by one mask byte and runs of whitespace
    collapsed: stable when the line moves or is re-indented, and holding no secret material."""
    merged: list[list[int]] = []
    for start, end in sorted((max(start, 0), min(end, len(line))) for start, end in spans):
        if end <= start:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    kept, cursor = [], 0
    for start, end in merged:
        kept += [line[cursor:start], _MASK]
        cursor = end
    kept.append(line[cursor:])
    normal = _SPACES.sub(b" ", b"".join(kept)).strip()
    return hashlib.sha256(normal).hexdigest()[:32]


def portable_path(origin: Origin, base: Path | None = None) -> str | None:
    """The path of a file or git origin relative to ``base`` (default: the working directory), in POSIX
    form, so that the same file has the same name on every checkout; git paths are already relative to
    the repository root. A file outside ``base`` keeps its absolute path. Streams have none."""
    if isinstance(origin, GitOrigin):
        return origin.path
    if not isinstance(origin, FileOrigin):
        return None
    where = os.path.realpath(origin.path)
    root = os.path.realpath(base if base is not None else os.getcwd())
    relative = os.path.relpath(where, root)
    if relative == os.pardir or relative.startswith(os.pardir + os.sep):
        return Path(where).as_posix()
    return Path(relative).as_posix()


def partial_fingerprints(findings: Sequence[Finding], base: Path | None = None) -> list[dict[str, str]]:
    """SARIF ``partialFingerprints`` for each finding, in order: a hash of rule id, portable path (and
    commit, for history) and the masked line, then ``:N`` counting equal hashes in order, as
    GitHub's own line hashes do, so two identical lines in one file stay two results."""
    seen: dict[str, int] = {}
    result = []
    for finding in findings:
        commit = finding.origin.commit if isinstance(finding.origin, GitOrigin) else ""
        where = portable_path(finding.origin, base) or ""
        material = "\0".join((finding.rule_id, where, commit, finding.context))
        digest = hashlib.sha256(material.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        seen[digest] = seen.get(digest, 0) + 1
        result.append({CONTEXT_SCHEME: f"{digest}:{seen[digest]}"})
    return result


SCRYPT_PREFIX = "scrypt:"
SALT_BYTES = 16
# Bounds on what a baseline may ask for: a hostile file must not make a scan allocate gigabytes.
SCRYPT_N_RANGE = (1 << 10, 1 << 17)
SCRYPT_R_RANGE = (1, 16)
SCRYPT_P_RANGE = (1, 4)


@dataclass(frozen=True, slots=True)
class SecretKdf:
    """A salted, deliberately slow hash of a secret, with the rule id and the portable path in its
    input: one guess tests one secret of one rule in one file. Defaults cost about 70 ms and 16 MiB per
    hash on one core (``n=2**14, r=8, p=1``)."""

    salt: bytes
    n: int = 1 << 14
    r: int = 8
    p: int = 1

    def __post_init__(self) -> None:
        low, high = SCRYPT_N_RANGE
        if not (low <= self.n <= high and self.n & (self.n - 1) == 0):
            raise ValueError(f"scrypt n must be a power of two in [{low}, {high}], not {self.n}")
        if not SCRYPT_R_RANGE[0] <= self.r <= SCRYPT_R_RANGE[1]:
            raise ValueError(f"scrypt r must be in {list(SCRYPT_R_RANGE)}, not {self.r}")
        if not SCRYPT_P_RANGE[0] <= self.p <= SCRYPT_P_RANGE[1]:
            raise ValueError(f"scrypt p must be in {list(SCRYPT_P_RANGE)}, not {self.p}")
        if len(self.salt) < SALT_BYTES:
            raise ValueError(f"a salt needs at least {SALT_BYTES} bytes")

    @classmethod
    def fresh(cls) -> SecretKdf:
        return cls(secrets.token_bytes(SALT_BYTES))

    def digest(self, rule_id: str, path: str, secret: str) -> str:
        material = "\0".join(("jitsec-baseline/v2", rule_id, path, secret)).encode("utf-8", "surrogatepass")
        derived = hashlib.scrypt(material, salt=self.salt, n=self.n, r=self.r, p=self.p,
                                 maxmem=256 * self.n * self.r * self.p, dklen=32)
        return SCRYPT_PREFIX + derived.hex()

    def describe(self) -> dict[str, Any]:
        return {"scheme": "scrypt", "salt": self.salt.hex(), "n": self.n, "r": self.r, "p": self.p}

    @classmethod
    def from_description(cls, described: Mapping[str, Any]) -> SecretKdf:
        """Raises ``ValueError`` for anything but well-formed parameters within the bounds."""
        if described.get("scheme") != "scrypt":
            raise ValueError(f"unknown secret hash scheme {described.get('scheme')!r}")
        salt, n, r, p = (described.get(name) for name in ("salt", "n", "r", "p"))
        if not isinstance(salt, str) or not all(isinstance(v, int) and not isinstance(v, bool)
                                                for v in (n, r, p)):
            raise ValueError("scrypt needs a hex `salt` and integer `n`, `r`, `p`")
        return cls(bytes.fromhex(salt), n, r, p)  # type: ignore[arg-type]
