"""The suite's records: one check, one test's result, the whole report. Frozen; never a plaintext secret.

Everything here ends up in the Markdown, HTML and JSON reports, so values that came near a secret are
rendered with ``jitsec.kernel.redaction.preview`` or a SHA-256 fingerprint before they reach these records.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any


class Outcome(Enum):
    PASSED = "passed"
    FAILED = "failed"  # the deployment did something AG-304 forbids
    ERROR = "error"  # the test could not run to the end (counts as a failure)


@dataclass(frozen=True, slots=True)
class Check:
    """One assertion a test made against the deployment, with what was measured."""

    name: str
    passed: bool
    detail: str = ""
    measured_seconds: float | None = None
    limit_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class AuditExcerpt:
    """One audit record of the broker, as read through ``--config`` (the audit holds no secret)."""

    seq: int
    at: float
    kind: str
    agent: str
    task_id: str
    lease_id: str
    engine: str
    scopes: tuple[str, ...]
    detail: str


@dataclass(frozen=True, slots=True)
class Searched:
    """One place a test searched for secrets, and what it found there (previews only)."""

    target: str
    files: int
    bytes: int
    hits: tuple[str, ...] = ()
    method: str = ""


@dataclass(frozen=True, slots=True)
class ConformanceResult:
    """The result of one test of section 8 (named so that pytest does not try to collect it)."""

    test_id: str
    title: str
    requirement: str
    outcome: Outcome
    duration_seconds: float
    checks: tuple[Check, ...] = ()
    audit: tuple[AuditExcerpt, ...] = ()
    searched: tuple[Searched, ...] = ()
    notes: tuple[str, ...] = ()
    error: str | None = None
    facts: tuple[tuple[str, str], ...] = ()  # machine-readable observations, e.g. ("rotation", "yes")

    @property
    def passed(self) -> bool:
        return self.outcome is Outcome.PASSED

    def fact(self, key: str) -> str | None:
        return dict(self.facts).get(key)


@dataclass(frozen=True, slots=True)
class Maturity:
    """The highest level of section 6 the evidence supports, why, and what no black-box test can show."""

    level: str  # "none", "basic", "intermediate" or "advanced"
    reasons: tuple[str, ...] = ()
    unverified: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Report:
    broker_url: str
    started_at: float
    finished_at: float
    results: tuple[ConformanceResult, ...]
    score: float  # 0-100
    maturity: Maturity
    settings: tuple[tuple[str, str], ...] = ()
    suite_notes: tuple[str, ...] = ()
    version: str = "jitsec.conformance/1"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(result.passed for result in self.results)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["passed"] = self.passed
        for result, raw in zip(self.results, data["results"], strict=True):
            raw["outcome"] = result.outcome.value
        return data
