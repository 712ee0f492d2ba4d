"""What the git hooks do, without the command-line framework: ``jitsec hook pre-commit`` in its
common form (no options: the staged changes, or the files pre-commit passes) runs from here alone, so a
commit does not pay for importing the framework; ``jitsec.commands.hook`` declares the commands and
their options and calls the same functions.

Start-up time is the budget here (a hook runs on every commit): only the git reader, the scanner
engine and the leak-response settings are imported (the broker client and the alert sinks only when a
broker or a sink is configured), and the compiled rule database and the loaded rule set come from the
scanner's on-disk cache.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from jitsec.connectors.sources.files import FilesSource
from jitsec.connectors.sources.git import GitError, git_executable
from jitsec.connectors.sources.git_diff import DiffSource, pushed_revisions
from jitsec.kernel.ports import Source
from jitsec.kernel.records import BrokerStatus, Chunk, Finding, ResponseAction, describe_origin
from jitsec.response.options import URL_ENV, ResponseOptions, default_state_dir

if TYPE_CHECKING:
    from jitsec.broker.client import BrokerClient
    from jitsec.response.options import ResponseRuntime

EXIT_CLEAN, EXIT_BLOCKED, EXIT_ERROR = 0, 1, 2
# What stops a hook from scanning (ValueError covers bad input and the pipeline's setup errors).
_SCAN_ERRORS = (GitError, subprocess.CalledProcessError, OSError, ValueError)
# A hook holds up a commit: the broker gets less time than a scan gives it. What it cannot take in
# that time waits in the leak outbox (state directory) for the next run with a broker.
BROKER_TIMEOUT_SECONDS = 2.0
FLUSH_SECONDS = 1.0


def repository_root() -> Path:
    result = subprocess.run(
        [git_executable(), "rev-parse", "--show-toplevel"], capture_output=True, check=False
    )
    if result.returncode != 0:
        raise GitError("not inside a git work tree")
    return Path(result.stdout.decode().strip())


class _Peeked:
    """A source whose first batch was already read (to skip loading the scanner for an empty diff)."""

    def __init__(self, source: Source, first: Sequence[Chunk], rest: Iterator[Sequence[Chunk]]) -> None:
        self.source, self.errors = source, source.errors
        self._batches = itertools.chain([first], rest)

    def batches(self) -> Iterator[Sequence[Chunk]]:
        return self._batches

    def acknowledge(self, chunk: Chunk) -> None:
        self.source.acknowledge(chunk)

    def lag(self) -> float | None:
        return self.source.lag()

    def close(self) -> None:
        self.source.close()


def _with_content(sources: Sequence[Source]) -> list[Source]:
    """The sources that add anything, each with its first batch already read."""
    kept: list[Source] = []
    for source in sources:
        batches = iter(source.batches())
        first = next(batches, None)
        if first is None:
            source.close()
        else:
            kept.append(_Peeked(source, first, batches))
    return kept


# Per finding (by fingerprint): what the leak response did, as the block message says it.
Outcomes = dict[str, str]


def _scan(
    sources: Sequence[Source],
    rules: Sequence[Path],
    baselines: Sequence[Path],
    response: ResponseOptions,
    root: Path,
) -> tuple[list[Finding], Outcomes]:
    """Every finding in ``sources`` that the baseline and the repository's ignores (``.jitsec.toml``,
    ``.gitleaksignore``; markers are the engine's) do not accept, and what the leak response did
    about each (empty without one). Nothing added (a commit that only deletes or renames) returns
    before the scanner is even loaded, and before the broker is asked anything."""
    with_content = _with_content(sources)
    if not with_content:
        return [], {}
    from jitsec.pipeline.builder import (  # noqa: PLC0415 - start-up cost
        PipelineSettings,
        RuleSettings,
        build_pipeline,
        with_ignores,
    )
    from jitsec.pipeline.ignores import IgnoreOptions, load_ignores  # noqa: PLC0415 - start-up cost
    from jitsec.pipeline.stages import emitting  # noqa: PLC0415 - start-up cost

    settings = PipelineSettings(rules=RuleSettings(packs=tuple(rules)), baselines=tuple(baselines),
                                response=response if response.enabled else None,
                                first_seen_in_history=False, flush_seconds=FLUSH_SECONDS)
    ignores = load_ignores(IgnoreOptions(gitignore=False, file_findings_by_path=True), [str(root)])
    for warning in ignores.warnings:
        _err(f"jitsec: warning: {warning}\n")
    settings = with_ignores(settings, ignores)
    findings: list[Finding] = []
    pipeline = build_pipeline(settings, tail=[emitting(findings.extend)], client=_broker_client(response))
    try:
        stats = pipeline.run(with_content)
    finally:
        pipeline.close()  # the leak response flushes (FLUSH_SECONDS at most) before outcomes are read
    if stats.errors.total:
        raise ValueError("; ".join(stats.errors.examples) or "the diff could not be scanned")
    runtime = pipeline.response
    return findings, _outcomes(runtime, findings) if runtime is not None else {}


def _broker_client(response: ResponseOptions) -> BrokerClient | None:
    """A broker client on the hook's short timeout (what it cannot take waits in the outbox)."""
    if not (response.enabled and response.broker_url):
        return None
    from jitsec.broker.client import BrokerClient  # noqa: PLC0415 - start-up cost

    return BrokerClient(response.broker_url, key=response.broker_key, timeout=BROKER_TIMEOUT_SECONDS)


_OUTCOME_TEXT = {
    ResponseAction.REVOKED: "revoked by the broker",
    ResponseAction.ALREADY_DEAD: "already dead (expired or revoked before)",
    ResponseAction.IRREVOCABLE: "live, and the broker could not revoke it: rotate it by hand",
    ResponseAction.PENDING: "broker unreachable: the report waits in the leak outbox",
}


def _outcomes(runtime: ResponseRuntime, findings: Iterable[Finding]) -> Outcomes:
    """Read after ``runtime.close``: incidents then hold the broker's last word (an outboxed report
    the broker took during the flush is ``revoked``, not ``pending``)."""
    outcomes: Outcomes = {}
    for finding in findings:
        incident = runtime.responder.incidents.get(finding.fingerprint)
        action = incident.action if incident is not None else ResponseAction.ALERT_ONLY
        if action in _OUTCOME_TEXT:
            text = _OUTCOME_TEXT[action]
            if action is ResponseAction.REVOKED and incident is not None and incident.lease_id:
                text += f" (lease {incident.lease_id})"
        elif (incident.broker if incident is not None else finding.broker) is BrokerStatus.UNKNOWN:
            text = "unknown to the broker" if runtime.client is not None else "broker format, no broker asked"
        else:
            text = "not a broker credential: rotate it at its issuer"
        outcomes[finding.fingerprint] = text
    return outcomes


def _err(text: str) -> None:
    sys.stderr.write(text)
    sys.stderr.flush()


def _report(
    findings: Iterable[Finding],
    what: str,
    bypass: str,
    outcomes: Outcomes | None = None,
    response: ResponseOptions | None = None,
) -> None:
    listed = sorted(findings, key=lambda f: (describe_origin(f.origin), f.line, f.column))
    outcomes = outcomes or {}
    _err(f"jitsec: {what} blocked: {len(listed)} secret(s) found\n\n")
    for finding in listed:
        outcome = outcomes.get(finding.fingerprint)
        _err(
            f"  {describe_origin(finding.origin)}:{finding.line}:{finding.column}  "
            f"{finding.rule_id}  {finding.preview}" + (f"  -> {outcome}" if outcome else "") + "\n"
        )
    revoked = sum(1 for text in outcomes.values() if text.startswith(_OUTCOME_TEXT[ResponseAction.REVOKED]))
    if revoked:
        _err(f"\n{revoked} live broker credential(s) revoked: the agents holding them need new ones.\n")
    pending = _OUTCOME_TEXT[ResponseAction.PENDING] in outcomes.values()
    if pending and response is not None:
        _err(
            f"\nThe broker did not answer. The leak report is kept in the outbox under {response.state_dir}\n"
            f"and delivered by the next jitsec run with a broker; the {what} is blocked meanwhile.\n"
        )
    _err(
        "\nRemove the secret (and rotate it if it was real), or, if it is a false positive, add\n"
        "`jitsec:allow` on that line, allowlist it in .jitsec.toml or accept it with\n"
        "`jitsec baseline create`.\n"
        + (f"To skip this check once: {bypass}\n" if not os.environ.get("CI") else
           "This run is in CI (CI is set): there is no skipping; fix the commit, or accept the finding.\n")
    )


DEFAULT_BASELINES = (".jitsec.baseline", ".secrets.baseline")  # jitsec's own, then detect-secrets'


def present_baselines(root: Path, given: Sequence[Path]) -> list[Path]:
    """The baselines given, else those of ``DEFAULT_BASELINES`` present at the repository root."""
    if given:
        return list(given)
    return [root / name for name in DEFAULT_BASELINES if (root / name).is_file()]


def not_scanned(root: Path, baselines: Sequence[Path]) -> frozenset[str]:
    """Baseline files list fingerprints and hashes of secrets: data about findings, not leaks."""
    excluded = set()
    for baseline in baselines:
        try:
            excluded.add(baseline.resolve().relative_to(root.resolve()).as_posix())
        except ValueError:
            continue
    return frozenset(excluded)


def run_pre_commit(
    files: Sequence[Path], rules: Sequence[Path], baselines: Sequence[Path], response: ResponseOptions
) -> int:
    """Git's pre-commit hook: FILES whole, or without FILES the staged changes; the exit status."""

    def sources(root: Path, excluded: frozenset[str]) -> list[Source]:
        if files:
            return [_files_source(root, files, excluded)]
        return [DiffSource.staged(root, exclude=excluded)]

    what = "the given files" if files else "the staged changes"
    return _run_hook(sources, rules, baselines, response, what=what, blocked="commit")


def run_pre_push(
    remote: str | None,
    from_ref: str | None,
    to_ref: str | None,
    *,
    rules: Sequence[Path],
    baselines: Sequence[Path],
    response: ResponseOptions,
) -> int:
    """Git's pre-push hook: the lines added by the commits being pushed; the exit status."""

    def sources(root: Path, excluded: frozenset[str]) -> list[Source]:
        ranges = _pushed_ranges(root, remote, from_ref, to_ref)
        return [DiffSource(root, revisions=revisions, exclude=excluded) for revisions in ranges]

    return _run_hook(sources, rules, baselines, response, what="the pushed commits", blocked="push")


def _run_hook(
    sources: Callable[[Path, frozenset[str]], list[Source]],
    rules: Sequence[Path],
    baselines: Sequence[Path],
    response: ResponseOptions,
    *,
    what: str,
    blocked: str,
) -> int:
    """One hook run over the sources ``sources(root, excluded)`` makes; the exit status."""
    try:
        root = repository_root()
        accepted = present_baselines(root, baselines)
        scanned = sources(root, not_scanned(root, accepted))
        findings, outcomes = _scan(scanned, rules, accepted, response, root)
    except _SCAN_ERRORS as exc:
        _err(f"jitsec: could not scan {what}: {exc}\n")
        return EXIT_ERROR
    if findings:
        _report(findings, blocked, f"git {blocked} --no-verify", outcomes, response)
        return EXIT_BLOCKED
    return EXIT_CLEAN


def plain_pre_commit(argv: Sequence[str]) -> int | None:
    """``argv`` (after the program name) run as ``hook pre-commit`` when it is the plain form: no
    option, and no broker named in the environment (whose settings the full command line checks).
    None when it is not: the full command line then runs it."""
    if list(argv[:2]) != ["hook", "pre-commit"] or os.environ.get(URL_ENV):
        return None
    files = argv[2:]
    if any(name.startswith("-") for name in files):
        return None
    response = ResponseOptions(state_dir=default_state_dir())
    return run_pre_commit([Path(name) for name in files], (), (), response)


def _files_source(root: Path, files: Sequence[Path], excluded: frozenset[str]) -> FilesSource:
    """The given files that exist (a deleted file has nothing to scan), less the baselines: the
    framework passes paths relative to the repository root, where it runs hooks."""
    kept = []
    for path in files:
        try:
            relative = path.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            relative = None
        if relative not in excluded and path.exists():
            kept.append(path)
    return FilesSource(kept)


def _pushed_ranges(
    root: Path, remote: str | None, from_ref: str | None, to_ref: str | None
) -> list[list[str]]:
    remote = remote or os.environ.get("PRE_COMMIT_REMOTE_NAME")
    from_ref = from_ref or os.environ.get("PRE_COMMIT_FROM_REF")
    to_ref = to_ref or os.environ.get("PRE_COMMIT_TO_REF")
    if from_ref:
        return [[f"{from_ref}..{to_ref or 'HEAD'}"]]
    if sys.stdin is None or sys.stdin.isatty():
        raise ValueError("no pre-push input: run from git's pre-push hook or pass --from-ref")
    return pushed_revisions(sys.stdin.read().splitlines(), remote, root)
