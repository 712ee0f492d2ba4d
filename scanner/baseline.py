"""Baselines: findings accepted on purpose, so later scans report only what is new.

A baseline must accept the same findings on every machine that checks out the repository, yet must
not let someone who reads it brute-force a weak third-party password. ``jitsec baseline create``
writes version 2, whose entries name the rule, the path (relative to the baseline's own folder, or
the repository root for git findings) and the secret in one of two portable ways:

- under a shared key (``JITSEC_FINGERPRINT_KEY`` set when the baseline is made): the keyed
  fingerprint, plus the key's id in the header. Cheap to check; whoever lacks the key cannot test
  guesses, and a scan under another key is told the entries cannot match.
- otherwise: ``secret_hash``, a salted scrypt of rule, path and secret under a random salt stored in
  the header (``fingerprint.SecretKdf``). The scanner computes it while the secret is still in hand,
  only for findings whose rule and path an entry lists, so a scan pays one slow hash per baselined
  finding and nothing for the rest.

Version 1 baselines (keyed fingerprints under whatever key made them) are still read, as is a
detect-secrets ``.secrets.baseline``: it stores ``hashed_secret``, the SHA-1 of each secret, so those
are compared inside the engine against the SHA-1 of each candidate while the secret is still in hand.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jitsec.scanner.fingerprint import SecretKdf, portable_path

from jitsec.kernel.records import Finding, GitOrigin, Origin

FORMAT = "jitsec-baseline"
VERSION = 2
HASH_CACHE_FILE = "baseline-hashes"  # in the cache folder: slow hashes this machine computed


class BaselineError(ValueError):
    """The baseline file is missing, unreadable or in no format we know."""


@dataclass(frozen=True, slots=True)
class HashedEntries:
    """The salted entries of one baseline file: ``digests[(rule, path)]`` are the secret hashes
    accepted there, paths relative to ``base`` (the baseline's folder)."""

    kdf: SecretKdf
    base: Path
    digests: Mapping[tuple[str, str], frozenset[str]]


@dataclass(frozen=True, slots=True)
class Baseline:
    fingerprints: frozenset[str] = frozenset()  # keyed fingerprints (version 1, or 2 under a shared key)
    sha1: frozenset[str] = frozenset()  # hashed_secret values (detect-secrets baselines)
    hashed: tuple[HashedEntries, ...] = ()  # salted entries (version 2 without a shared key)
    key_ids: frozenset[str] = frozenset()  # the shared keys version 2 keyed entries were made under

    def accepts(self, finding: Finding) -> bool:
        if finding.fingerprint in self.fingerprints:
            return True
        digest = finding.secret_hash
        return digest is not None and any(
            digest in group.digests.get((finding.rule_id, _path(finding.origin, group.base)), ())
            for group in self.hashed)

    @property
    def empty(self) -> bool:
        return not (self.fingerprints or self.hashed)

    def __or__(self, other: Baseline) -> Baseline:
        return Baseline(self.fingerprints | other.fingerprints, self.sha1 | other.sha1,
                        self.hashed + other.hashed, self.key_ids | other.key_ids)

    def key_warnings(self, key_id: str | None) -> list[str]:
        """Why some entries cannot match under the key of this run (``key_id`` None: a local key)."""
        if not self.key_ids or key_id in self.key_ids:
            return []
        return [f"a baseline was made under a shared fingerprint key (id {', '.join(sorted(self.key_ids))}) "
                "that this run does not have, so its entries accept nothing here: set "
                "JITSEC_FINGERPRINT_KEY to that key"]


def load_baseline(path: Path) -> Baseline:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise BaselineError(f"cannot read baseline {path}: {error.strerror or error}") from error
    except (ValueError, UnicodeDecodeError) as error:
        raise BaselineError(f"baseline {path} is not JSON: {error}") from error
    return parse_baseline(document, str(path), base=path.parent)


def parse_baseline(document: Any, label: str = "baseline", *, base: Path = Path()) -> Baseline:
    """A baseline from its JSON ``document``; ``base`` is the folder its paths are relative to.
    Raises ``BaselineError`` naming ``label`` for anything malformed."""
    if isinstance(document, dict) and document.get("format") == FORMAT:
        entries = document.get("findings", [])
        if not isinstance(entries, list):
            raise BaselineError(f"{label}: `findings` must be a list")
        if document.get("version", 1) == 1:
            return Baseline(fingerprints=_fingerprints(entries))
        return _parse_portable(document, entries, label, base)
    if isinstance(document, dict) and isinstance(document.get("results"), dict):  # detect-secrets
        hashes = {
            str(secret["hashed_secret"]).lower()
            for secrets in document["results"].values() if isinstance(secrets, list)
            for secret in secrets if isinstance(secret, dict) and "hashed_secret" in secret
        }
        return Baseline(sha1=frozenset(hashes))
    raise BaselineError(f"{label}: neither a jitsec baseline nor a detect-secrets .secrets.baseline")


def _fingerprints(entries: Iterable[Any]) -> frozenset[str]:
    return frozenset(str(entry["fingerprint"]) for entry in entries
                     if isinstance(entry, dict) and "fingerprint" in entry)


def _parse_portable(document: dict[str, Any], entries: list[Any], label: str, base: Path) -> Baseline:
    if document.get("version") != VERSION:
        raise BaselineError(f"{label}: baseline version {document.get('version')!r} is not one this jitsec "
                            f"reads (1 or {VERSION}); a newer jitsec may have written it")
    key_id = document.get("key_id")
    if key_id is not None and not isinstance(key_id, str):
        raise BaselineError(f"{label}: `key_id` must be a string")
    hashed: tuple[HashedEntries, ...] = ()
    described = document.get("secret_hash")
    if described is not None:
        if not isinstance(described, dict):
            raise BaselineError(f"{label}: `secret_hash` must be an object")
        try:
            kdf = SecretKdf.from_description(described)
        except ValueError as error:
            raise BaselineError(f"{label}: `secret_hash`: {error}") from None
        digests: dict[tuple[str, str], set[str]] = {}
        for entry in entries:
            if isinstance(entry, dict) and all(isinstance(entry.get(k), str) for k in
                                               ("rule", "path", "secret_hash")):
                digests.setdefault((entry["rule"], entry["path"]), set()).add(entry["secret_hash"])
        frozen = {key: frozenset(values) for key, values in digests.items()}
        hashed = (HashedEntries(kdf, base, frozen),) if frozen else ()
    return Baseline(fingerprints=_fingerprints(entries), hashed=hashed,
                    key_ids=frozenset([key_id]) if key_id else frozenset())


def _path(origin: Origin, base: Path) -> str:
    return portable_path(origin, base) or ""


class HashCache:
    """Slow hashes computed once for each (salt, rule, path, secret). In memory, keyed by an HMAC under
    a key that lives only in this process; on disk (``file``), keyed by the machine's own keyed
    fingerprint (``keyed``), so that a hook does not pay again for the same accepted secret on every
    commit. The file holds digests the baseline already publishes and fingerprints under the local
    key: nothing a reader without that key can test guesses against. It is best effort: an
    unreadable, unwritable or oversized file (``MAX_FILE_BYTES``) is ignored or started over."""

    MAX_FILE_BYTES = 4 << 20

    def __init__(self, keyed: Callable[[str], str] | None = None, file: Path | None = None) -> None:
        if keyed is None:
            process_key = secrets.token_bytes(32)

            def keyed(secret: str) -> str:
                material = secret.encode("utf-8", "surrogatepass")
                return hmac.new(process_key, material, hashlib.sha256).hexdigest()
        self._keyed = keyed
        self._file = file
        self._known: dict[tuple[str, ...], str] = self._load(file) if file is not None else {}
        self._lock = threading.Lock()

    def digest(self, kdf: SecretKdf, rule_id: str, path: str, secret: str) -> str:
        key = (kdf.salt.hex(), f"{kdf.n},{kdf.r},{kdf.p}", rule_id, path, self._keyed(secret))
        with self._lock:
            known = self._known.get(key)
        if known is None:
            known = kdf.digest(rule_id, path, secret)
            with self._lock:
                self._known[key] = known
            self._save(key, known)
        return known

    @classmethod
    def _load(cls, file: Path) -> dict[tuple[str, ...], str]:
        known: dict[tuple[str, ...], str] = {}
        try:
            if file.stat().st_size > cls.MAX_FILE_BYTES:
                file.unlink()
                return known
            lines = file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            return known
        for line in lines:
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, list) and len(row) == 6 and all(isinstance(item, str) for item in row):
                known[tuple(row[:5])] = row[5]
        return known

    def _save(self, key: tuple[str, ...], digest: str) -> None:
        if self._file is None:
            return
        line = json.dumps([*key, digest], separators=(",", ":")) + "\n"
        try:
            self._file.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(self._file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(descriptor, line.encode("utf-8"))  # one short append: whole lines from every process
            finally:
                os.close(descriptor)
        except OSError:
            return


@dataclass(slots=True)
class MatchingHasher:
    """``SecretHasher`` for a scan: the secret hash of a finding some salted entry may accept (same rule
    and path), when it matches; None otherwise, without hashing."""

    groups: tuple[HashedEntries, ...]
    cache: HashCache = field(default_factory=HashCache)

    def digest(self, rule_id: str, origin: Origin, secret: str) -> str | None:
        for group in self.groups:
            path = portable_path(origin, group.base)
            wanted = group.digests.get((rule_id, path)) if path is not None else None
            if wanted:
                digest = self.cache.digest(group.kdf, rule_id, path or "", secret)
                if digest in wanted:
                    return digest
        return None


@dataclass(slots=True)
class CreatingHasher:
    """``SecretHasher`` while a baseline is made: every finding with a path gets its secret hash under
    the new baseline's salt, paths relative to the new baseline's folder ``base``."""

    kdf: SecretKdf
    base: Path
    cache: HashCache = field(default_factory=HashCache)

    def digest(self, rule_id: str, origin: Origin, secret: str) -> str | None:
        path = portable_path(origin, self.base)
        return None if path is None else self.cache.digest(self.kdf, rule_id, path, secret)

    @classmethod
    def for_output(cls, output: Path) -> CreatingHasher:
        """Keeps the salt of the baseline already at ``output`` (so a re-made baseline changes only
        where findings changed), else a fresh one."""
        kdf = None
        try:
            existing = json.loads(output.read_text(encoding="utf-8"))
            if isinstance(existing, dict) and existing.get("format") == FORMAT:
                kdf = SecretKdf.from_description(existing.get("secret_hash") or {})
        except (OSError, ValueError, UnicodeDecodeError):
            kdf = None
        return cls(kdf or SecretKdf.fresh(), output.absolute().parent)


def baseline_document(findings: Sequence[Finding], rules_digest: str, *, base: Path = Path(),
                      kdf: SecretKdf | None = None, key_id: str | None = None) -> dict[str, Any]:
    """A version 2 baseline accepting ``findings``, one entry per (rule, path, secret), paths relative
    to ``base``. Entries carry the ``secret_hash`` the scan gave them under ``kdf`` (salted mode), or the
    keyed fingerprint when made under the shared key ``key_id`` (or when a finding has no path, such as
    standard input: then the entry holds on this machine only)."""
    seen: dict[tuple[str, str, str], dict[str, Any]] = {}
    for finding in findings:
        path = _path(finding.origin, base)
        entry: dict[str, Any] = {"rule": finding.rule_id, "path": path, "line": finding.line,
                                 "preview": finding.preview, "severity": finding.severity.value}
        if isinstance(finding.origin, GitOrigin) and finding.origin.commit:
            entry["commit"] = finding.origin.commit
        if finding.context:
            entry["context"] = finding.context
        if key_id is None and finding.secret_hash is not None:
            entry["secret_hash"] = finding.secret_hash
        else:
            entry["fingerprint"] = finding.fingerprint
        seen.setdefault((finding.rule_id, path, entry.get("secret_hash") or finding.fingerprint), entry)
    document: dict[str, Any] = {"format": FORMAT, "version": VERSION, "rules_digest": rules_digest}
    if key_id is not None:
        document["key_id"] = key_id
    elif kdf is not None:
        document["secret_hash"] = kdf.describe()
    document["findings"] = sorted(seen.values(), key=lambda e: (e["path"], e["line"], e["rule"]))
    return document


