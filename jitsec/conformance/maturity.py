"""From results to section 6's maturity level and a conformance score.

- basic: secrets are per agent (8.4 passes: no credential shared across agents or tasks).
- intermediate: per agent, per task, scoped, short-lived, revoked on completion, never persisted,
  leaks detected (8.1, 8.2, 8.3, 8.4, 8.5 and 8.7 pass) and the audit was read and verified
  (``--config``: hash chain intact, the run's issues and revocations recorded).
- advanced: intermediate, plus the adversarial test (8.6: extraction from a compromised agent and
  post-task replay yield nothing live) with a mid-task rotation observed. Hardware protection of the
  master keys is verified only when the broker reports ``key_custody: pkcs11`` on ``/healthz`` AND the
  suite, reading the audit through ``--config``, verified the chain with keys it used from the token;
  otherwise it is listed as unverified.

Score: the share of the seven tests that passed, 0-100 (a test not run counts as not passed).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from jitsec.conformance.model import ConformanceResult, Maturity
from jitsec.conformance.settings import TEST_IDS

INTERMEDIATE = ("8.1", "8.2", "8.3", "8.4", "8.5", "8.7")
TOKEN_CUSTODY = "pkcs11"  # what /healthz says as key_custody when the master keys are in a token
HSM_ITEM = "hardware security modules protecting the broker's master keys (attest separately)"
UNVERIFIABLE = (
    HSM_ITEM,
    "independent adversarial testing by a party other than the operator",
)


@dataclass(frozen=True, slots=True)
class KeyCustody:
    verified: bool
    note: str


def key_custody(health: object, audit_custody: str | None) -> KeyCustody:
    """Whether the master keys are shown to be in a token: the broker says so, and the audit was
    verified with keys the suite could use only by logging in to that token (``--config``)."""
    said = health.get("key_custody", "unknown") if isinstance(health, dict) else "unknown"
    if said == TOKEN_CUSTODY and audit_custody == TOKEN_CUSTODY:
        return KeyCustody(True, "master keys in a PKCS#11 token: /healthz reports hsm and the audit chain "
                                "was verified through the token (HSM requirement verified)")
    if said == TOKEN_CUSTODY:
        return KeyCustody(False, "the broker reports its master keys in a token (hsm); run with --config "
                                 "and the token's PIN to verify it")
    return KeyCustody(False, f"master keys' custody: {said} (not a hardware token)")


def score(results: Mapping[str, ConformanceResult]) -> float:
    passed = sum(1 for test_id in TEST_IDS if test_id in results and results[test_id].passed)
    return round(100.0 * passed / len(TEST_IDS), 1)


def assess(
    results: Mapping[str, ConformanceResult], audit_verified: bool, *, hsm_verified: bool = False
) -> Maturity:
    """The level reached; the HSM item leaves the unverified list (for a reason) when it was shown."""
    level = _level(results, audit_verified)
    if not hsm_verified:
        return level
    return Maturity(level.level, (*level.reasons, "master keys verified in a PKCS#11 token (HSM)"),
                    tuple(item for item in level.unverified if item != HSM_ITEM))


def _level(results: Mapping[str, ConformanceResult], audit_verified: bool) -> Maturity:
    def ok(test_id: str) -> bool:
        return test_id in results and results[test_id].passed

    if not ok("8.4"):
        return Maturity("none", ("8.4 did not pass: secrets are not shown to be unique per agent",))
    missing = [t for t in INTERMEDIATE if not ok(t)]
    if missing or not audit_verified:
        reasons = ["8.4 passed: agent-specific credentials, none shared"]
        if missing:
            reasons.append(f"intermediate needs {', '.join(missing)} to pass")
        if not audit_verified:
            reasons.append("intermediate needs the audit verified (run with --config on the broker's host)")
        return Maturity("basic", tuple(reasons), UNVERIFIABLE)
    reasons = [f"{', '.join(INTERMEDIATE)} passed and the audit chain was verified"]
    rotation = ok("8.6") and results["8.6"].fact("rotation") == "yes"
    if not rotation:
        reasons.append("advanced needs 8.6 to pass, with a mid-task rotation")
        return Maturity("intermediate", tuple(reasons), UNVERIFIABLE)
    reasons.append("8.6 passed: a compromised agent yields no live credential; mid-task rotation works")
    return Maturity("advanced", tuple(reasons), UNVERIFIABLE)
