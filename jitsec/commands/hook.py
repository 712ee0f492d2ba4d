"""``jitsec hook pre-commit`` and ``jitsec hook pre-push``: block secrets before they leave the laptop.

pre-commit scans only the lines the staged changes add (``git diff --cached``), located by their line
in the new file; pre-push scans the lines added by the commits being pushed (git's pre-push stdin,
or pre-commit's ``PRE_COMMIT_FROM_REF``/``PRE_COMMIT_TO_REF``). Findings already accepted in the
baseline pass. The message names file, line and rule with a redacted preview only, and says how to
proceed. Exit codes: 0 clean, 1 blocked, 2 could not scan.

Start-up time is the budget here (a hook runs on every commit): only the git reader and the scanner
engine are imported, and the compiled rule database comes from the scanner's on-disk cache.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import click

from connectors.base import Source
from connectors.sources.git import GitError, git_executable
from connectors.sources.git_diff import DiffSource, pushed_revisions
from scanner.model import Chunk, Finding, describe_origin

EXIT_CLEAN, EXIT_BLOCKED, EXIT_ERROR = 0, 1, 2
# What stops a hook from scanning (ValueError covers bad input and jitsec.commands.scanning's setup errors).
_SCAN_ERRORS = (GitError, subprocess.CalledProcessError, OSError, ValueError)


def _repository_root() -> Path:
    result = subprocess.run(
        [git_executable(), "rev-parse", "--show-toplevel"], capture_output=True, check=False
    )
    if result.returncode != 0:
        raise GitError("not inside a git work tree")
    return Path(result.stdout.decode().strip())


def _added_chunks(sources: Sequence[Source]) -> Iterator[Chunk]:
    for source in sources:
        try:
            yield from source.chunks()
        finally:
            source.close()


def _scan(sources: Sequence[Source], rules: Sequence[Path], baselines: Sequence[Path]) -> list[Finding]:
    """Every finding in ``sources`` that the baseline does not accept. Nothing added (a commit that
    only deletes or renames) returns before the scanner is even loaded."""
    chunks = _added_chunks(sources)
    first = next(chunks, None)
    if first is None:
        return []
    from jitsec.commands.scanning import build_scanner, load_baselines  # noqa: PLC0415 - start-up cost

    accepted = load_baselines(baselines)
    scanner = build_scanner(rules, accepted)
    findings: list[Finding] = []
    for chunk in itertools.chain([first], chunks):
        found = scanner.scan_bytes(chunk.data, chunk.origin, offset=chunk.offset, line=chunk.line)
        findings.extend(finding for finding in found if not accepted.accepts(finding))
    return findings


def _report(findings: Iterable[Finding], what: str, bypass: str) -> None:
    listed = sorted(findings, key=lambda f: (describe_origin(f.origin), f.line, f.column))
    err = click.get_text_stream("stderr")
    err.write(f"jitsec: {what} blocked: {len(listed)} secret(s) found\n\n")
    for finding in listed:
        err.write(
            f"  {describe_origin(finding.origin)}:{finding.line}:{finding.column}  "
            f"{finding.rule_id}  {finding.preview}\n"
        )
    err.write(
        "\nRemove the secret (and rotate it if it was real), or, if it is a false positive, add\n"
        "`pragma: allowlist secret` on that line or accept it with `jitsec baseline create`.\n"
        f"To skip this check once: {bypass}\n"
    )


DEFAULT_BASELINES = (".jitsec.baseline", ".secrets.baseline")  # jitsec's own, then detect-secrets'


def _baselines(root: Path, given: Sequence[Path]) -> list[Path]:
    """The baselines given, else those of ``DEFAULT_BASELINES`` present at the repository root."""
    if given:
        return list(given)
    return [root / name for name in DEFAULT_BASELINES if (root / name).is_file()]


def _not_scanned(root: Path, baselines: Sequence[Path]) -> frozenset[str]:
    """Baseline files list fingerprints and hashes of secrets: data about findings, not leaks."""
    excluded = set()
    for baseline in baselines:
        try:
            excluded.add(baseline.resolve().relative_to(root.resolve()).as_posix())
        except ValueError:
            continue
    return frozenset(excluded)


rules_option = click.option(
    "--rules", "rules", multiple=True, type=click.Path(path_type=Path, dir_okay=False),
    help="Extra rule pack (TOML); repeatable.",
)  # fmt: skip
baseline_option = click.option(
    "--baseline", "baselines", multiple=True, type=click.Path(path_type=Path, dir_okay=False),
    help="Accepted findings (jitsec or detect-secrets format); repeatable. "
    "Default: .jitsec.baseline and .secrets.baseline at the repository root, when present.",
)  # fmt: skip


@click.group(name="hook")
def hook() -> None:
    """Git hooks: block commits and pushes that add secrets."""


@hook.command(name="pre-commit")
@rules_option
@baseline_option
def pre_commit(rules: tuple[Path, ...], baselines: tuple[Path, ...]) -> None:
    """Scan the lines added by the staged changes; exit 1 (blocking the commit) on a finding."""
    try:
        root = _repository_root()
        accepted = _baselines(root, baselines)
        source = DiffSource.staged(root, exclude=_not_scanned(root, accepted))
        findings = _scan([source], rules, accepted)
    except _SCAN_ERRORS as exc:
        click.echo(f"jitsec: could not scan the staged changes: {exc}", err=True)
        sys.exit(EXIT_ERROR)
    if findings:
        _report(findings, "commit", "git commit --no-verify")
        sys.exit(EXIT_BLOCKED)


@hook.command(name="pre-push")
@click.argument("remote", required=False)
@click.argument("url", required=False)
@click.option("--from-ref", help="Scan FROM_REF..TO_REF instead of reading git's pre-push input.")
@click.option("--to-ref", help="See --from-ref (default HEAD).")
@rules_option
@baseline_option
def pre_push(
    *,
    remote: str | None,
    url: str | None,
    from_ref: str | None,
    to_ref: str | None,
    rules: tuple[Path, ...],
    baselines: tuple[Path, ...],
) -> None:
    """Scan the lines added by the commits being pushed; exit 1 (blocking the push) on a finding.

    Git runs it as `pre-push REMOTE URL` with one `LOCAL_REF LOCAL_ID REMOTE_REF REMOTE_ID` line per
    pushed ref on stdin; under the pre-commit framework the range comes from its environment.
    """
    try:
        root = _repository_root()
        ranges = _pushed_ranges(root, remote, from_ref, to_ref)
        accepted = _baselines(root, baselines)
        excluded = _not_scanned(root, accepted)
        sources = [DiffSource(root, revisions=revisions, exclude=excluded) for revisions in ranges]
        findings = _scan(sources, rules, accepted)
    except _SCAN_ERRORS as exc:
        click.echo(f"jitsec: could not scan the pushed commits: {exc}", err=True)
        sys.exit(EXIT_ERROR)
    if findings:
        _report(findings, "push", "git push --no-verify")
        sys.exit(EXIT_BLOCKED)


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
