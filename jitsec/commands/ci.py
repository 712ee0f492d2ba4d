"""``jitsec ci``: the scan a CI job runs, which fails the job when a secret is in what it checks.

Two scopes. The whole tree: every file git tracks at the checkout (untracked build output is not
the repository's). A range: only the lines added by the commits of ``REF..HEAD``, the push or merge
request being checked, so an old accepted secret elsewhere does not fail every pipeline. With
``--since auto`` the range comes from GitHub Actions' event or GitLab CI's variables
(``connectors.sources.ci_range``), and the whole tree is scanned where there is none (a new branch,
a scheduled run). Paths are repository-relative whatever the working directory, so SARIF
fingerprints and baselines agree with every other machine.

Exit codes: 0 clean, 1 findings, 2 could not scan (bad options, not a git work tree, a base commit
missing from a shallow clone, unreadable files).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import cast

import click

from jitsec.commands.hook import baseline_option, rules_option
from jitsec.commands.hook_scan import not_scanned, present_baselines, repository_root
from jitsec.connectors.sources.ci_range import ci_base
from jitsec.connectors.sources.git import GitError, git_executable
from jitsec.connectors.sources.git_diff import DiffSource
from jitsec.kernel.ports import Stage
from jitsec.kernel.records import Finding
from jitsec.pipeline.builder import (
    PipelineSettings,
    PipelineSetupError,
    RuleSettings,
    build_pipeline,
    load_rules,
)
from jitsec.pipeline.paths import EXIT_CLEAN, EXIT_ERROR, EXIT_FINDINGS, ScanResult, Tally, plan, scan_paths
from jitsec.pipeline.stages import emitting
from jitsec.scanner.output import FORMATS, FindingWriter, Format
from jitsec.scanner.ruleset import RuleSet


class _CiError(Exception):
    """Why the job cannot be scanned; printed, exit 2."""


def _tracked_files(root: Path, excluded: frozenset[str]) -> list[str]:
    """Regular files git tracks (symlinks and submodules are not content of this repository)."""
    listed = subprocess.run([git_executable(), "-C", str(root), "ls-files", "-z", "--stage"],
                            capture_output=True, check=False)
    if listed.returncode != 0:
        raise _CiError(f"git ls-files failed: {listed.stderr.decode(errors='replace').strip()}")
    files = []
    for record in listed.stdout.split(b"\0"):
        if not record:
            continue
        mode, _, path = record.partition(b"\t")
        name = os.fsdecode(path)
        if mode.startswith((b"100644", b"100755")) and name not in excluded and os.path.isfile(name):
            files.append(name)
    return files


def _base_commit(root: Path, since: str | None) -> tuple[str | None, str]:
    """The base commit to scan from (None: the whole tree) and a phrase saying what is scanned."""
    if since is None:
        return None, "the whole tree"
    if since == "auto":
        found = ci_base(os.environ)
        if found is None:
            return None, "the whole tree (no push or merge request range in this CI environment)"
        base, origin = found.commit, found.found_in
    else:
        base, origin = since, "--since"
    check = subprocess.run([git_executable(), "-C", str(root), "rev-parse", "--verify", "--quiet",
                            f"{base}^{{commit}}"], capture_output=True, check=False)
    if check.returncode != 0:
        raise _CiError(f"base commit {base} (from {origin}) is not in this clone: fetch the history "
                       "(GitHub: actions/checkout with fetch-depth: 0; GitLab: GIT_DEPTH: 0)")
    return base, f"the commits after {base[:12]} (from {origin})"


@click.command("ci")
@click.option("--since", metavar="REF",
              help="Scan only the lines added by the commits of REF..HEAD; `auto` reads the push or "
                   "merge request range from GitHub Actions or GitLab CI (the whole tree when none). "
                   "Default: the whole tree.")
@click.option("-f", "--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True,
              help="Format of the findings written to stdout or --output.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write findings here instead of stdout.")
@click.option("--sarif", "sarif", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write a SARIF 2.1.0 report here (for code scanning upload).")
@rules_option
@baseline_option
def ci(*, since: str | None, fmt: str, output: Path | None, sarif: Path | None, rules: tuple[Path, ...],
       baselines: tuple[Path, ...]) -> None:
    """Scan the repository the way a CI job should, and fail the job on a secret.

    Run it from anywhere inside the checkout. It scans every tracked file, or with --since only the
    commits being pushed or merged. Findings accepted in .jitsec.baseline or .secrets.baseline at the
    repository root (or --baseline) pass. A summary goes to stderr.

    \b
    Exit codes: 0 clean, 1 findings, 2 could not scan (not a git work tree,
    a base commit missing from a shallow clone, unreadable files, bad rules).

    \b
    Examples:
      jitsec ci                                   every tracked file
      jitsec ci --sarif jitsec.sarif              ... and a SARIF report
      jitsec ci --since origin/main               what this branch adds
      jitsec ci --since auto                      the push / merge request (GitHub, GitLab)
    """
    try:
        root = repository_root()
        outputs = [(cast(Format, fmt), output and output.absolute())]
        if sarif is not None:
            outputs.append(("sarif", sarif.absolute()))
        accepted = [path.absolute() for path in present_baselines(root, baselines)]
        packs = tuple(path.absolute() for path in rules)
        os.chdir(root)  # repository-relative paths in every report, wherever the job started
        base, scope = _base_commit(root, since)
        ruleset = load_rules(RuleSettings(packs=packs))
        findings, result = _scan(root, base, ruleset, accepted)
    except (_CiError, GitError, PipelineSetupError, OSError) as error:
        click.echo(f"jitsec: {error}", err=True)
        sys.exit(EXIT_ERROR)
    _write(findings, result, outputs, ruleset)
    click.echo(f"jitsec ci: scanned {scope}: {result.findings} finding(s) in {result.files} file(s)"
               + (f", {result.baselined} in baseline" if result.baselined else ""), err=True)
    for example in result.errors.examples:
        click.echo(f"jitsec: could not read: {example}", err=True)
    sys.exit(EXIT_ERROR if result.errors.total else EXIT_FINDINGS if findings else EXIT_CLEAN)


def _scan(root: Path, base: str | None, ruleset: RuleSet, baselines: Sequence[Path],
          ) -> tuple[list[Finding], ScanResult]:
    excluded = not_scanned(root, baselines)
    settings = PipelineSettings(baselines=tuple(baselines))
    findings: list[Finding] = []
    result = ScanResult()
    tail: list[Stage] = [Tally(result), emitting(findings.extend)]
    with build_pipeline(settings, ruleset=ruleset, tail=tail) as pipeline:
        for warning in pipeline.warnings:
            click.echo(f"jitsec: warning: {warning}", err=True)
        if base is None:
            scan_paths(pipeline, plan(_tracked_files(root, excluded)), result)
        else:
            result.add_stats(pipeline.run([DiffSource(root, revisions=[f"{base}..HEAD"], exclude=excluded)]))
    result.baselined = pipeline.accepted
    return findings, result


def _write(findings: list[Finding], result: ScanResult, outputs: list[tuple[Format, Path | None]],
           ruleset: RuleSet) -> None:
    with ExitStack() as stack:
        for fmt, path in outputs:
            try:
                stream = stack.enter_context(open(path, "w", encoding="utf-8")) if path else sys.stdout
            except OSError as error:
                click.echo(f"jitsec: cannot write {path}: {error.strerror or error}", err=True)
                sys.exit(EXIT_ERROR)
            writer = FindingWriter(fmt, stream, ruleset, color=False)
            writer.write(findings)
            writer.close(result.summary())
