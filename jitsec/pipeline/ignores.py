"""Everything that leaves paths or findings out of a scan, loaded once per run and applied where it
belongs:

=============================  ==========================================  ================================
source                         what                                        applied
=============================  ==========================================  ================================
``.gitignore`` (git's own)     ignored files and folders                   the walk (not read)
``--exclude GLOB``             globs, from each scanned folder             the walk; history paths
``.jitsec.toml``               ``allowlist.paths`` globs                   the walk; history paths
                               ``allowlist.secrets/lines/stopwords``       the engine (secret in hand)
                               ``rules.disable``, ``rules.packs``          the rule set
                               ``min_severity``                            the ignore stage
gitleaks config                global ``paths`` regexes                    the walk; history paths
                               global ``regexes``/``stopwords``            the engine
                               global ``commits``                          the ignore stage
``.gitleaksignore``            fingerprints                                the ignore stage
inline markers                 ``gitleaks:allow``, ``jitsec:allow``, …     the engine (files, git only)
=============================  ==========================================  ================================

Whatever is read, a broker-format credential or a live broker credential is never left out: the
engine keeps it past content allowlists and markers, the ignore stage past everything else. What the
walk does not read (ignored and excluded paths) is counted in the run's summary.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from jitsec.connectors.sources.files import PathSkip, SkipReason
from jitsec.connectors.sources.gitignore import git_ignored
from jitsec.kernel.records import Chunk, Confidence, FileOrigin, Finding, GitOrigin, Severity
from jitsec.scanner.allowlist import ContentAllowlist, GlobError, PathRules
from jitsec.scanner.gitleaks import GitleaksConfig, read_gitleaks_config
from jitsec.scanner.gitleaksignore import GITLEAKSIGNORE, GitleaksIgnore, load_gitleaksignore
from jitsec.scanner.project_config import (
    ProjectConfig,
    ProjectConfigError,
    below,
    find_project_config,
    load_project_config,
)
from jitsec.scanner.rules_model import RuleError


class IgnoreSetupError(ValueError):
    """A project file, exclude glob or gitleaks config that cannot be used; the message names it."""


@dataclass(frozen=True, slots=True)
class IgnoreOptions:
    """What the command line says about ignoring."""

    gitignore: bool = True  # False: --no-ignore
    excludes: tuple[str, ...] = ()  # --exclude GLOB, repeatable
    project_config: Path | None = None  # --project-config FILE
    find_project_config: bool = True  # False: --no-project-config
    gitleaks_config: Path | None = None  # --gitleaks-config FILE (its global allowlists)
    file_findings_by_path: bool = False  # True where files are not walked (diffs): paths apply to findings


@dataclass(frozen=True, slots=True)
class Ignores:
    """The loaded ignores of one run. ``base`` is the scanned folder: ``--exclude`` globs, gitleaks
    path regexes and ``.gitleaksignore`` paths are taken from there."""

    base: Path
    gitignore: bool = True
    excludes: PathRules = field(default_factory=PathRules)
    project: ProjectConfig | None = None
    gitleaks: GitleaksConfig | None = None
    fingerprints: GitleaksIgnore = field(default_factory=GitleaksIgnore)
    warnings: tuple[str, ...] = ()
    file_findings_by_path: bool = False  # see IgnoreOptions

    @property
    def content(self) -> ContentAllowlist:
        """The allowlist the engine applies while the secret is in hand."""
        content = self.project.content if self.project is not None else ContentAllowlist()
        return content | self.gitleaks.content if self.gitleaks is not None else content

    @property
    def gitleaks_paths(self) -> PathRules:
        return PathRules(regexes=self.gitleaks.paths) if self.gitleaks is not None else PathRules()

    @property
    def packs(self) -> tuple[Path, ...]:
        return self.project.packs if self.project is not None else ()

    @property
    def disabled_rules(self) -> frozenset[str]:
        return self.project.disabled_rules if self.project is not None else frozenset()

    def path_skips(self, root: Path) -> PathSkip | None:
        """What the walk of ``root`` (a folder, or a file named directly) leaves out: what git ignores
        (folders only: a file named directly is read), ``--exclude`` globs and gitleaks path regexes
        from ``root``, ``.jitsec.toml`` globs from the project file's folder."""
        is_dir = root.is_dir()
        ignored = git_ignored(root) if self.gitignore and is_dir else None
        excludes = PathRules(self.excludes.globs, self.gitleaks_paths.regexes)
        project = self.project.paths if self.project is not None and self.project.paths else None
        if ignored is None and not excludes and project is None:
            return None
        anchor = os.path.realpath(root) if is_dir else ""  # a file named directly: resolved itself
        project_base = str(self.project.base.resolve()) if self.project is not None else ""

        def skip(relative: str, is_folder: bool) -> SkipReason | None:
            if ignored is not None and ignored.ignores(relative, is_folder):
                return "ignored"
            if excludes.matches(relative):
                return "excluded"
            if project is not None:
                where = os.path.join(anchor, relative) if anchor else os.path.realpath(relative)
                from_project = _below(where, project_base)
                if from_project is not None and project.matches(from_project):
                    return "excluded"
            return None

        return skip

    def stage(self) -> IgnoreStage | None:
        """The stage that drops findings by fingerprint, commit, history path and severity; None
        when nothing here works on findings."""
        stage = IgnoreStage(self)
        return stage if stage.active else None


class IgnoreStage:
    """Drops findings a ``.gitleaksignore`` fingerprint, a gitleaks config's allowlisted commit, an
    excluded or allowlisted path in history (or in a diff's files, which are not walked), or the
    project's ``min_severity`` leaves out, counting them (``dropped``). A broker-format or live
    credential is never dropped. Repository paths are matched from the repository root."""

    def __init__(self, ignores: Ignores) -> None:
        self.ignores = ignores
        self.fingerprints = ignores.fingerprints
        self.commits = ignores.gitleaks.commits if ignores.gitleaks is not None else frozenset()
        self.min_severity: Severity | None = ignores.project.min_severity if ignores.project else None
        project_paths = ignores.project.paths if ignores.project is not None else PathRules()
        self.history_paths = PathRules(ignores.excludes.globs + project_paths.globs,
                                       ignores.excludes.regexes + ignores.gitleaks_paths.regexes)
        self.base = str(ignores.base.resolve())
        self.file_paths = ignores.file_findings_by_path
        self.dropped = 0
        self._lock = threading.Lock()

    @property
    def active(self) -> bool:
        return bool(self.fingerprints or self.commits or self.min_severity or self.history_paths)

    def process(self, chunk: Chunk, findings: list[Finding]) -> list[Finding]:
        if not findings:
            return findings
        kept = [finding for finding in findings if is_broker_credential(finding) or not self.drops(finding)]
        if len(kept) != len(findings):
            with self._lock:
                self.dropped += len(findings) - len(kept)
        return kept

    def drops(self, finding: Finding) -> bool:
        if self.min_severity is not None and below(finding.severity, self.min_severity):
            return True
        origin = finding.origin
        if isinstance(origin, GitOrigin):
            commit = origin.commit.lower()
            return (any(commit.startswith(allowed) for allowed in self.commits)
                    or self.history_paths.matches(origin.path)
                    or self.fingerprints.accepts(origin.path, finding.rule_id, finding.line, origin.commit))
        if isinstance(origin, FileOrigin) and (self.fingerprints or self.file_paths):
            relative = _below(os.path.realpath(origin.path), self.base)
            return relative is not None and (
                (self.file_paths and self.history_paths.matches(relative))
                or self.fingerprints.accepts(relative, finding.rule_id, finding.line))
        return False

    def close(self) -> None:
        """Nothing held."""


def _below(path: str, folder: str) -> str | None:
    """``path`` relative to ``folder`` with ``/``, or None when it is not below it (both resolved)."""
    relative = os.path.relpath(path, folder)
    if relative == os.pardir or relative.startswith(os.pardir + os.sep):
        return None
    return Path(relative).as_posix()


def exclude_skip(globs: Sequence[str]) -> PathSkip | None:
    """What ``--exclude GLOB`` leaves out of a followed folder (``jitsec watch``); None for no globs."""
    try:
        rules = PathRules.of(globs)
    except GlobError as error:
        raise IgnoreSetupError(f"--exclude {error}") from None
    if not rules:
        return None

    def skip(relative: str, is_folder: bool) -> SkipReason | None:
        return "excluded" if rules.matches(relative) else None

    return skip


def is_broker_credential(finding: Finding) -> bool:
    """A broker-format credential (it carries its SHA-256) or one the broker knows as live."""
    return finding.credential_sha256 is not None or finding.confidence is Confidence.CONFIRMED


def scanned_base(targets: Sequence[str]) -> Path:
    """The folder a run is about: the first path named (a file's folder), ``git:PATH``'s PATH, or the
    current folder (stdin, streams)."""
    from jitsec.connectors.address import GIT_PREFIX, is_source_address  # noqa: PLC0415 - a hook's start-up

    for target in targets:
        if target == "-":
            continue
        if target.startswith(GIT_PREFIX):
            return Path(target[len(GIT_PREFIX):] or os.curdir)
        if is_source_address(target):
            continue
        path = Path(target)
        return path if path.is_dir() else path.parent
    return Path(os.curdir)


def load_ignores(options: IgnoreOptions, targets: Sequence[str]) -> Ignores:
    """Read every ignore source for a run over ``targets``; problems are ``IgnoreSetupError``s."""
    base = scanned_base(targets)
    warnings: list[str] = []
    try:
        excludes = PathRules.of(options.excludes)
    except GlobError as error:
        raise IgnoreSetupError(f"--exclude {error}") from None
    project = _project(options, base)
    gitleaks = None
    if options.gitleaks_config is not None:
        try:
            gitleaks = read_gitleaks_config(options.gitleaks_config)
        except RuleError as error:
            raise IgnoreSetupError(f"invalid rules: {error}") from None
        warnings.extend(gitleaks.warnings)
    try:
        fingerprints = load_gitleaksignore(base / GITLEAKSIGNORE)
    except OSError as error:
        raise IgnoreSetupError(f"{base / GITLEAKSIGNORE}: cannot read ({error.strerror or error})") from None
    warnings.extend(f"{base / GITLEAKSIGNORE}: {problem}, skipped" for problem in fingerprints.problems)
    return Ignores(base=base, gitignore=options.gitignore, excludes=excludes, project=project,
                   gitleaks=gitleaks, fingerprints=fingerprints, warnings=tuple(warnings),
                   file_findings_by_path=options.file_findings_by_path)


def _project(options: IgnoreOptions, base: Path) -> ProjectConfig | None:
    path = options.project_config
    if path is None and options.find_project_config:
        path = find_project_config(base)
    if path is None:
        return None
    try:
        return load_project_config(path)
    except ProjectConfigError as error:
        raise IgnoreSetupError(str(error)) from None
