"""Runs the selected tests of section 8 against a live deployment and returns the report.

    report = Suite(settings).run()
    write_reports(report, settings.report_dir, secrets=suite.ledger.values())

Tests run one after another, each in its own tasks under fresh agent names, and each cleans up
(completes) every task it started, also when it fails. An exception inside a test makes that test
ERROR and the suite goes on. Preflight problems (broker unreachable, database fixture impossible,
policy missing) raise ``SuiteError`` before any test runs.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from types import ModuleType

import httpx

from jitsec.broker.client import BrokerAPIError
from jitsec.broker.errors import ConfigError, PolicyDenied
from jitsec.conformance import completion, compromise, leak, scope, storage, ttl, uniqueness
from jitsec.conformance.context import Context, Recorder, SecretLedger
from jitsec.conformance.maturity import assess, key_custody, score
from jitsec.conformance.model import AuditExcerpt, ConformanceResult, Outcome, Report
from jitsec.conformance.policy import policy_snippet
from jitsec.conformance.settings import SuiteSettings
from jitsec.kernel.redaction import scrub

TESTS: dict[str, ModuleType] = {
    module.TEST_ID: module for module in (ttl, completion, scope, uniqueness, storage, compromise, leak)
}
USE_RECORDS_SHOWN = 3  # introspection polling writes many ``use`` records; the report shows a few


class SuiteError(RuntimeError):
    """The suite could not start against this deployment (the message says what to fix)."""


class Suite:
    def __init__(self, settings: SuiteSettings, ledger: SecretLedger | None = None) -> None:
        self.settings = settings
        self.ledger = ledger if ledger is not None else SecretLedger()

    def run(self) -> Report:
        settings = self.settings
        own_dir = settings.work_dir is None
        work_dir = Path(tempfile.mkdtemp(prefix="jitsec-conformance-")) if own_dir else settings.work_dir
        assert work_dir is not None
        work_dir.mkdir(parents=True, exist_ok=True)
        started_at = time.time()
        try:
            ctx = Context(settings, work_dir, self.ledger)
        except ConfigError as error:  # --config unreadable, or its key token refuses (PIN, token)
            if own_dir:
                shutil.rmtree(work_dir, ignore_errors=True)
            raise SuiteError(f"--config: {error}") from None
        try:
            health = self._preflight(ctx)
            results = [self._run_one(ctx, TESTS[test_id]) for test_id in settings.selected]
            notes, audit_verified = self._audit_notes(ctx, results)
            custody = key_custody(health, ctx.audit.custody.kind if ctx.audit is not None else None)
            notes.append(custody.note)
        finally:
            ctx.close()
            if own_dir:
                shutil.rmtree(work_dir, ignore_errors=True)
        by_id = {r.test_id: r for r in results}
        return Report(
            broker_url=settings.broker_url,
            started_at=started_at,
            finished_at=time.time(),
            results=tuple(results),
            score=score(by_id),
            maturity=assess(by_id, audit_verified, hsm_verified=custody.verified),
            settings=settings.public(),
            suite_notes=tuple(notes),
        )

    # --------------------------------------------------------------------------------------------
    def _preflight(self, ctx: Context) -> object:
        try:
            return ctx.anonymous.request("GET", "/healthz")
        except (BrokerAPIError, httpx.HTTPError) as error:
            raise SuiteError(f"broker {self.settings.broker_url} is not healthy: {error}") from None
        if ctx.postgres is not None:
            try:
                ctx.postgres.ensure_fixture()
            except Exception as error:
                raise SuiteError(
                    f"cannot prepare the database fixture with --postgres: {type(error).__name__}"
                ) from None
        if ctx.audit is not None:
            probe_agent = f"{self.settings.agent_prefix}{ctx.run_id}-probe"
            try:
                entry = ctx.audit.config.policy.for_agent(probe_agent)
            except PolicyDenied:
                entry = None
            if entry is None or "token" not in entry.engines:
                database = ctx.postgres.database if ctx.postgres else None
                raise SuiteError(
                    "the broker's policy has no entry for the conformance agents; add:\n\n"
                    + policy_snippet(self.settings.agent_prefix, database)
                )

    def _run_one(self, ctx: Context, module: ModuleType) -> ConformanceResult:
        rec = Recorder.new(module.TEST_ID)
        start = time.monotonic()
        error = None
        try:
            module.run(ctx, rec)
        except Exception as exc:  # the test could not finish: an ERROR, and the suite goes on
            error = scrub(f"{type(exc).__name__}: {exc}", list(ctx.ledger.values()))[:500]
            if isinstance(exc, BrokerAPIError) and exc.code == "unknown_agent":
                error += " (add the conformance policy: jitsec conformance --print-policy)"
        finally:
            ctx.cleanup(rec.task_ids)
        audit: tuple[AuditExcerpt, ...] = ()
        notes = list(rec.notes)
        if ctx.audit is not None:
            audit, omitted = _trim(ctx.audit.of(rec.task_ids, rec.agents))
            if omitted:
                notes.append(f"{omitted} further 'use' (introspection) audit records not shown")
        if error is not None:
            outcome = Outcome.ERROR
        elif rec.checks and all(c.passed for c in rec.checks):
            outcome = Outcome.PASSED
        else:
            outcome = Outcome.FAILED
        return ConformanceResult(
            test_id=module.TEST_ID,
            title=module.TITLE,
            requirement=module.REQUIREMENT,
            outcome=outcome,
            duration_seconds=round(time.monotonic() - start, 3),
            checks=tuple(rec.checks),
            audit=audit,
            searched=tuple(rec.searched),
            notes=tuple(notes),
            error=error,
            facts=tuple(sorted(rec.facts.items())),
        )

    def _audit_notes(self, ctx: Context, results: list[ConformanceResult]) -> tuple[list[str], bool]:
        if ctx.audit is None:
            return ["audit not read (no --config): maturity above basic cannot be shown"], False
        chain = ctx.audit.chain()
        kinds = {e.kind for r in results for e in r.audit}
        attributed = {"issue", "revoke"} <= kinds
        notes = [
            f"audit chain: {chain.records} records, "
            + ("intact" if chain.intact else "TAMPERED: " + "; ".join(chain.problems[:5]))
        ]
        notes.append(
            "the run's issues and revocations are in the audit with agent, task and lease"
            if attributed
            else "the run's issue/revoke records were not all found in the audit"
        )
        return notes, chain.intact and attributed


def _trim(records: tuple[AuditExcerpt, ...]) -> tuple[tuple[AuditExcerpt, ...], int]:
    kept, uses = [], 0
    for record in records:
        if record.kind == "use":
            uses += 1
            if uses > USE_RECORDS_SHOWN:
                continue
        kept.append(record)
    return tuple(kept), max(0, uses - USE_RECORDS_SHOWN)
