"""Baselines: findings accepted on purpose, so later scans report only what is new.

jitsec's own baseline lists keyed fingerprints (``jitsec baseline create``). A detect-secrets
``.secrets.baseline`` is read too: it stores ``hashed_secret``, the SHA-1 of each secret, so those are
compared inside the engine against the SHA-1 of each candidate while the secret is still in hand.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jitsec.scanner.output import finding_row

from jitsec.kernel.records import Finding

FORMAT = "jitsec-baseline"
VERSION = 1


class BaselineError(ValueError):
    """The baseline file is missing, unreadable or in no format we know."""


@dataclass(frozen=True, slots=True)
class Baseline:
    fingerprints: frozenset[str] = frozenset()  # keyed fingerprints (jitsec baselines)
    sha1: frozenset[str] = frozenset()  # hashed_secret values (detect-secrets baselines)

    def accepts(self, finding: Finding) -> bool:
        return finding.fingerprint in self.fingerprints

    def __or__(self, other: Baseline) -> Baseline:
        return Baseline(self.fingerprints | other.fingerprints, self.sha1 | other.sha1)


def load_baseline(path: Path) -> Baseline:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise BaselineError(f"cannot read baseline {path}: {error.strerror or error}") from error
    except (ValueError, UnicodeDecodeError) as error:
        raise BaselineError(f"baseline {path} is not JSON: {error}") from error
    return parse_baseline(document, str(path))


def parse_baseline(document: Any, label: str = "baseline") -> Baseline:
    if isinstance(document, dict) and document.get("format") == FORMAT:
        entries = document.get("findings", [])
        if not isinstance(entries, list):
            raise BaselineError(f"{label}: `findings` must be a list")
        return Baseline(fingerprints=frozenset(
            str(entry["fingerprint"])
            for entry in entries
            if isinstance(entry, dict) and "fingerprint" in entry
        ))
    if isinstance(document, dict) and isinstance(document.get("results"), dict):  # detect-secrets
        hashes = {
            str(secret["hashed_secret"]).lower()
            for secrets in document["results"].values() if isinstance(secrets, list)
            for secret in secrets if isinstance(secret, dict) and "hashed_secret" in secret
        }
        return Baseline(sha1=frozenset(hashes))
    raise BaselineError(f"{label}: neither a jitsec baseline nor a detect-secrets .secrets.baseline")


def baseline_document(findings: Sequence[Finding], rules_digest: str) -> dict[str, Any]:
    """A jitsec baseline accepting ``findings`` (one entry per fingerprint, first location kept)."""
    seen: dict[str, dict[str, Any]] = {}
    for finding in findings:
        row = finding_row(finding)
        seen.setdefault(finding.fingerprint, {k: row[k] for k in ("fingerprint", "rule", "path", "line",
                                                                 "preview", "severity")})
    return {"format": FORMAT, "version": VERSION, "rules_digest": rules_digest,
            "findings": sorted(seen.values(), key=lambda e: (e["path"], e["line"], e["rule"]))}
