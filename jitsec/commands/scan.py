"""`jitsec scan`, `jitsec rules check|list`, `jitsec baseline create`: the scanner's command line."""

from __future__ import annotations

import json
import os
import secrets
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO, cast

import click

from jitsec.commands.ignore_options import ignore_options
from jitsec.commands.response_options import response_options
from jitsec.connectors.address import is_source_address
from jitsec.connectors.sources.files import BinaryMode
from jitsec.kernel.ports import Stage
from jitsec.kernel.records import Finding
from jitsec.pipeline.builder import (
    EngineName,
    Pipeline,
    PipelineSettings,
    PipelineSetupError,
    RuleSettings,
    build_pipeline,
    load_rules,
    with_ignores,
)
from jitsec.pipeline.ignores import IgnoreOptions, IgnoreSetupError, load_ignores
from jitsec.pipeline.paths import EXIT_ERROR, ScanResult, Tally, plan, scan_addresses, scan_paths
from jitsec.pipeline.stages import emitting
from jitsec.response.options import ResponseOptions
from jitsec.scanner.baseline import CreatingHasher, baseline_document
from jitsec.scanner.engine import Scanner
from jitsec.scanner.fingerprint import Fingerprinter
from jitsec.scanner.output import FORMATS, FindingWriter, Format
from jitsec.scanner.ruleset import (
    RuleError,
    RuleSet,
    default_pack_paths,
    load_pack,
    load_published_examples,
    make_ruleset,
)

_ENGINES = click.Choice(["auto", "hyperscan", "python"])


def _rule_options(command: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--rules", "rule_files", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
                     help="Add a rule pack (TOML). Repeatable."),
        click.option("--no-default-rules", is_flag=True, help="Load only the packs given with --rules."),
        click.option("--gitleaks-config", type=click.Path(dir_okay=False, path_type=Path),
                     help="Also load the rules and global allowlists of a gitleaks TOML configuration."),
        click.option("--engine", type=_ENGINES, default="auto", show_default=True,
                     help="Matcher: Hyperscan when installed (auto), or the pure-Python path."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _scan_options(command: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.argument("paths", nargs=-1, required=True),
        click.option("-j", "--jobs", type=click.IntRange(1, 64), default=1, show_default=True,
                     help="Files over 1 MiB scanned in parallel (small files are read by one job, "
                          "many per matcher pass)."),
        click.option("--baseline", "baselines", multiple=True,
                     type=click.Path(dir_okay=False, path_type=Path),
                     help="Accepted findings (a jitsec baseline or a detect-secrets .secrets.baseline). "
                          "Repeatable."),
        click.option("--progress/--no-progress", default=None,
                     help="Progress bar on stderr (default: when stderr is a terminal)."),
    ]
    for option in reversed(options):
        command = option(command)
    return _rule_options(ignore_options(command))


def _fail(message: str) -> click.exceptions.Exit:
    click.echo(f"jitsec: {message}", err=True)
    return click.exceptions.Exit(EXIT_ERROR)


def _settings(rule_files: tuple[Path, ...], no_default: bool, gitleaks: Path | None, engine: str,  # noqa: PLR0917
              baselines: tuple[Path, ...] = (), response: ResponseOptions | None = None) -> PipelineSettings:
    rules = RuleSettings(rule_files, not no_default, gitleaks, cast(EngineName, engine))
    return PipelineSettings(rules=rules, baselines=baselines, response=response)


def _with_ignores(settings: PipelineSettings, ignore: IgnoreOptions,
                  paths: tuple[str, ...]) -> PipelineSettings:
    """Load the run's ignores (printing what a gitleaks config or .gitleaksignore holds that jitsec
    leaves out) and fold them into ``settings``."""
    try:
        ignores = load_ignores(replace(ignore, gitleaks_config=settings.rules.gitleaks_config), paths)
    except IgnoreSetupError as error:
        raise _fail(str(error)) from None
    for warning in ignores.warnings:
        click.echo(f"jitsec: warning: {warning}", err=True)
    return with_ignores(settings, ignores)


def _load_rules(settings: RuleSettings) -> RuleSet:
    try:
        return load_rules(settings)
    except PipelineSetupError as error:
        raise _fail(str(error)) from None


def _build(settings: PipelineSettings, ruleset: RuleSet, tail: list[Stage]) -> Pipeline:
    try:
        pipeline = build_pipeline(settings, ruleset=ruleset, tail=tail)
    except PipelineSetupError as error:
        raise _fail(str(error)) from None
    for warning in pipeline.warnings:
        click.echo(f"jitsec: warning: {warning}", err=True)
    return pipeline


@contextmanager
def _progress_bar(enabled: bool | None, total: int) -> Iterator[Callable[[int], None] | None]:
    if enabled is False or (enabled is None and not sys.stderr.isatty()) or total <= 0:
        yield None
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn  # noqa: PLC0415

    with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                  TransferSpeedColumn(), transient=True, console=_stderr_console()) as bar:
        task = bar.add_task("scanning", total=total)
        yield lambda size: bar.advance(task, size)


class _CurrentStdout:
    """Standard output as it is at each write: while the progress bar is drawn, rich replaces
    ``sys.stdout`` with a proxy that prints above the bar (a stream taken before would write onto the
    bar's line)."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()

    def isatty(self) -> bool:
        return sys.stdout.isatty()

    @property
    def encoding(self) -> str:
        return getattr(sys.stdout, "encoding", None) or "utf-8"


def _stderr_console() -> Any:
    from rich.console import Console  # noqa: PLC0415

    return Console(stderr=True, emoji=False)


def _execute(paths: tuple[str, ...], settings: PipelineSettings, ruleset: RuleSet, jobs: int,  # noqa: PLR0917
             progress: bool | None, sink: Stage, binary: BinaryMode = "skip") -> tuple[ScanResult, Pipeline]:
    """Files and stdin, then ``git:``/``kafka://``/``elasticsearch://`` addresses, through one pipeline
    whose last stage is ``sink``."""
    addresses = [path for path in paths if is_source_address(path)]
    planned = plan([path for path in paths if not is_source_address(path)], settings.ignores)
    result = ScanResult()
    with (_progress_bar(progress, planned.total_bytes) as advance,
          _build(settings, ruleset, [Tally(result, advance), sink]) as pipeline):
        planned.report.passed_over = advance  # skipped binaries count towards the bar's total
        scan_paths(pipeline, planned, result, jobs=jobs, binary=binary)
        if addresses:
            scan_addresses(pipeline, addresses, result)
    result.baselined = pipeline.accepted
    result.allowlisted = pipeline.allowlisted
    return result, pipeline


def _report(result: ScanResult, scanner: Scanner) -> None:
    parts = [f"{result.findings} finding{'s' if result.findings != 1 else ''}",
             f"{result.files} file{'s' if result.files != 1 else ''}", f"{result.bytes} bytes",
             f"engine {scanner.engine}", f"rules {scanner.ruleset.digest}"]
    if result.baselined:
        parts.append(f"{result.baselined} in baseline")
    if result.skipped_binary:
        parts.append(f"{result.skipped_binary} binary skipped")
    if result.skipped_special:
        parts.append(f"{result.skipped_special} special files skipped")
    if result.skipped_ignored:
        parts.append(f"{result.skipped_ignored} git-ignored path{'s' if result.skipped_ignored != 1 else ''} "
                     "skipped")
    if result.skipped_excluded:
        parts.append(f"{result.skipped_excluded} path{'s' if result.skipped_excluded != 1 else ''} excluded")
    if result.allowlisted:
        parts.append(f"{result.allowlisted} allowlisted")
    click.echo("jitsec: " + ", ".join(parts), err=True)
    for example in result.errors.examples:
        click.echo(f"jitsec: could not read: {example}", err=True)
    if result.errors.total > len(result.errors.examples):
        click.echo(f"jitsec: {result.errors.total} read errors in all", err=True)


@click.command("scan")
@_scan_options
@click.option("-f", "--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True,
              help="Output format. gitleaks-json is gitleaks' report with redacted Secret and Match.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="Write findings here instead of stdout.")
@click.option("--stats", "show_stats", is_flag=True,
              help="Print throughput (MB per CPU second), candidate share and per-rule counts to stderr.")
@click.option("--binary", type=click.Choice(["skip", "strings"]), default="skip", show_default=True,
              help="Binary files: skip them, or scan their printable runs (ASCII and UTF-16LE, 8+ "
                   "characters, like `strings`), e.g. a core dump.")
@response_options
def scan(  # noqa: PLR0917 - click passes options positionally by name
    paths: tuple[str, ...], jobs: int, baselines: tuple[Path, ...], progress: bool | None,
         rule_files: tuple[Path, ...], no_default_rules: bool, gitleaks_config: Path | None, engine: str,
         fmt: str, output: Path | None, show_stats: bool, binary: str, response: ResponseOptions,
         ignore: IgnoreOptions) -> None:
    """Find secrets in files, directories (recursively) and standard input (`-`).

    Secrets are shown only as redacted previews with a keyed fingerprint. UTF-16/32 text is decoded;
    other binary files are skipped and counted (or, with --binary strings, their printable runs are
    scanned, one per line); FIFOs inside directories are skipped, devices refused. In a git work
    tree, what git ignores is not read (--no-ignore reads it). Lines marked `gitleaks:allow`,
    `jitsec:allow` or `pragma: allowlist secret` are ignored, and so is what the nearest
    .jitsec.toml, the --gitleaks-config's allowlists and a .gitleaksignore allow; broker credentials
    (jit_…) are reported whatever says otherwise.

    \b
    Exit codes: 0 no findings, 1 findings, 2 an error (bad options or rules, or
    some input could not be read; findings found elsewhere are still written).

    \b
    Examples:
      jitsec scan .                              scan a repository
      jitsec scan -j 4 /var/log/app              four files at a time
      kubectl logs pod/api | jitsec scan -       scan a stream
      jitsec scan -f sarif -o jitsec.sarif src/  for code scanning dashboards
      jitsec scan -f gitleaks-json git:.         history, for tools that read gitleaks reports
      jitsec scan --baseline .jitsec.baseline .  report only new findings
      jitsec scan --gitleaks-config .gitleaks.toml --rules extra.toml .
      jitsec scan --exclude '*.min.js' --exclude 'tests/fixtures/**' .
      jitsec scan --no-ignore --no-project-config .   everything, no project allowlists
      jitsec scan --binary strings core.12345    printable strings of a core dump
    """
    started_wall = time.perf_counter()
    settings = _with_ignores(_settings(rule_files, no_default_rules, gitleaks_config, engine, baselines,
                                       response if response.enabled else None), ignore, paths)
    ruleset = _load_rules(settings.rules)
    try:
        target: Any = open(output, "w", encoding="utf-8") if output else nullcontext(_CurrentStdout())  # noqa: SIM115
    except OSError as error:
        raise _fail(f"cannot write {output}: {error.strerror or error}") from None
    with target as stream:
        color = output is None and stream.isatty() and not os.environ.get("NO_COLOR")  # no-color.org
        writer = FindingWriter(cast(Format, fmt), stream, ruleset, color=color)
        result, pipeline = _execute(paths, settings, ruleset, jobs, progress, emitting(writer.write),
                                    cast(BinaryMode, binary))
        writer.close(result.summary())
    _report(result, pipeline.scanner)
    if show_stats:
        _print_stats(result, pipeline.scanner, time.process_time(), time.perf_counter() - started_wall)
    sys.exit(result.exit_code)


def _print_stats(result: ScanResult, scanner: Scanner, cpu: float, wall: float) -> None:
    """Figures for benchmarks and tuning. CPU time is the whole process's (interpreter start, imports
    and rule loading included); wall time is from the command's start."""
    stats = scanner.stats
    candidates = stats.candidates
    megabytes = result.bytes / 1e6
    rate = megabytes / max(cpu, 1e-9)
    click.echo(f"jitsec: stats: {megabytes:.1f} MB in {cpu:.2f} s CPU ({rate:.1f} MB/s per core), "
               f"{wall:.2f} s wall; {stats.lines} lines, {candidates} candidate windows "
               f"({100 * candidates / max(stats.lines, 1):.3f}% of lines), "
               f"{stats.decoded_lines} decoded lines", err=True)
    busy = [(rule_id, counts) for rule_id, counts in stats.rules.items() if counts.candidates]
    for rule_id, counts in sorted(busy, key=lambda item: -item[1].candidates):
        click.echo(f"jitsec: stats: {rule_id:40} candidates {counts.candidates:>8}  confirmed "
                   f"{counts.confirmed:>6}", err=True)


@click.group("baseline")
def baseline_group() -> None:
    """Accept today's findings so later scans report only new ones."""


@baseline_group.command("create")
@_scan_options
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              default=Path(".jitsec.baseline"), show_default=True, help="Where to write the baseline.")
def baseline_create(  # noqa: PLR0917 - click passes options positionally by name
    paths: tuple[str, ...], jobs: int, baselines: tuple[Path, ...], progress: bool | None,
                    rule_files: tuple[Path, ...], no_default_rules: bool, gitleaks_config: Path | None,
                    engine: str, ignore: IgnoreOptions, output: Path) -> None:
    """Scan PATHS and write every finding to a baseline file, in a form every machine can check.

    Entries name rule and path (relative to the baseline's folder) and identify the secret by a
    salted, deliberately slow hash (scrypt), or by its keyed fingerprint when JITSEC_FINGERPRINT_KEY
    holds a key shared by the team and CI. Neither lets a reader of the file test password guesses
    cheaply. Re-creating a baseline keeps its salt. Commit the file at the repository root.


    \b
    Examples:
      jitsec baseline create .                       writes .jitsec.baseline
      jitsec scan --baseline .jitsec.baseline .      then only new findings fail
    \b
    Exit status: 0 written (whatever was found), 2 could not scan (bad options, unreadable input) or
    write.
    """
    creating = CreatingHasher.for_output(output)
    settings = replace(_settings(rule_files, no_default_rules, gitleaks_config, engine, baselines),
                       drop_accepted=False, new_baseline=creating)  # keep what the old ones accepted
    settings = _with_ignores(settings, ignore, paths)
    ruleset = _load_rules(settings.rules)
    collected: list[Finding] = []
    result, pipeline = _execute(paths, settings, ruleset, jobs, progress, emitting(collected.extend))
    fingerprinter = pipeline.scanner.fingerprinter
    document = baseline_document(collected, ruleset.digest, base=creating.base,
                                 kdf=None if fingerprinter.shared else creating.kdf,
                                 key_id=fingerprinter.key_id if fingerprinter.shared else None)
    try:
        output.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    except OSError as error:
        raise _fail(f"cannot write {output}: {error.strerror or error}") from None
    click.echo(f"jitsec: wrote {len(document['findings'])} entries to {output}", err=True)
    _report(result, pipeline.scanner)
    sys.exit(EXIT_ERROR if result.errors.total else 0)


@click.group("rules")
def rules_group() -> None:
    """Inspect and validate rule packs."""


@rules_group.command("check")
@click.argument("packs", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--engine", type=_ENGINES, default="auto", show_default=True)
def rules_check(packs: tuple[Path, ...], engine: str) -> None:
    """Validate packs and run every rule's examples in every context.

    Without PACK, checks the default packs. Errors name the pack, the rule and the field.
    Exit code 0 when all is well, 1 when a pack is invalid or an example fails.

    \b
    Examples:
      jitsec rules check                 the default packs
      jitsec rules check my-rules.toml   a pack of your own
    """
    from jitsec.scanner.rule_examples import check_rule_examples  # noqa: PLC0415

    paths = list(packs) or default_pack_paths()
    if not paths:
        raise _fail("no packs to check")
    rules, names, problems = [], [], 0
    for path in paths:
        try:
            name, pack_rules = load_pack(path)
        except RuleError as error:
            click.echo(f"INVALID {error}", err=True)
            problems += 1
            continue
        names.append(name)
        rules.extend(pack_rules)
    try:
        ruleset = make_ruleset(rules, names, load_published_examples())
    except RuleError as error:
        click.echo(f"INVALID {error}", err=True)
        raise click.exceptions.Exit(1) from None
    fingerprinter = Fingerprinter(secrets.token_bytes(32))  # throwaway: nothing is stored
    scanner = Scanner(ruleset, fingerprinter, engine=cast(EngineName, engine))
    for index in scanner.matcher.fallback:
        click.echo(f"note: rule {ruleset.rules[index].id!r} is not Hyperscan-compatible; "
                   "it runs on keyword search (add a `hyperscan` prefilter pattern)", err=True)
    for rule in ruleset.rules:
        for failure in check_rule_examples(scanner, rule):
            click.echo(f"FAIL {rule.pack}: {failure}", err=True)
            problems += 1
    click.echo(f"{len(ruleset.rules)} rules in {len(names)} packs, digest {ruleset.digest}, engine "
               f"{scanner.engine}: {'ok' if not problems else f'{problems} problems'}")
    sys.exit(1 if problems else 0)


@rules_group.command("list")
@_rule_options
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of a table.")
def rules_list(
    rule_files: tuple[Path, ...], no_default_rules: bool, gitleaks_config: Path | None, engine: str,
               as_json: bool) -> None:
    """List the loaded rules and the rule-set digest stamped on findings and alerts.

    \b
    Examples:
      jitsec rules list                              a table of the default rules
      jitsec rules list --json | jq '.rules | length'
      jitsec rules list --rules mine.toml --no-default-rules
    \b
    Exit status: 0 listed, 2 a pack does not load (the message names pack, rule and field).
    """
    ruleset = _load_rules(_settings(rule_files, no_default_rules, gitleaks_config, engine).rules)
    rows = [{"id": r.id, "pack": r.pack, "severity": r.severity.value, "validator": r.validator,
             "keywords": list(r.keywords), "description": r.description,
             "pairs_with": list(r.pairs_with), "pair_lines": r.pair_lines} for r in ruleset.rules]
    out: TextIO = sys.stdout
    if as_json:
        json.dump({"digest": ruleset.digest, "packs": list(ruleset.packs), "rules": rows}, out, indent=2)
        out.write("\n")
        return
    from rich.console import Console  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    table = Table(title=f"{len(rows)} rules, digest {ruleset.digest}")
    for column in ("id", "pack", "severity", "validator", "description"):
        table.add_column(column, no_wrap=column == "id")
    for rule in ruleset.rules:
        table.add_row(rule.id, rule.pack, rule.severity.value, rule.validator or "", rule.description)
    Console(file=out, emoji=False).print(table)
