"""The one place that assembles a scan: rules → scanner → stages, for ``scan``, ``watch``, ``hook``,
``baseline create`` and ``demo`` alike.

    pipeline = build_pipeline(PipelineSettings(rules=RuleSettings(...), baselines=(...), response=...),
                              tail=[writer_stage])
    with pipeline:
        stats = pipeline.run(sources)

The leak response is built before the scanner, so the scanner gets its live-fingerprint hook at
construction (prefix-less broker secrets are recognised from the first chunk). Setup problems come
out as ``PipelineSetupError`` with a message fit for the terminal.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Literal

from jitsec.kernel.ports import Source, Stage
from jitsec.pipeline.runner import PipelineStats, run_sources
from jitsec.pipeline.stages import BaselineStage, FirstSeenInHistory
from jitsec.scanner.baseline import (
    HASH_CACHE_FILE,
    Baseline,
    BaselineError,
    CreatingHasher,
    HashCache,
    MatchingHasher,
    load_baseline,
)
from jitsec.scanner.cache import default_cache_dir
from jitsec.scanner.engine import REGEX_TIMEOUT, Scanner
from jitsec.scanner.fingerprint import Fingerprinter, FingerprintKeyError, SecretHasher
from jitsec.scanner.ruleset import RuleError, RuleSet, disable_rules, load_ruleset

if TYPE_CHECKING:
    from jitsec.broker.client import BrokerClient
    from jitsec.kernel.ports import Sink
    from jitsec.pipeline.ignores import Ignores, IgnoreStage
    from jitsec.response.options import ResponseOptions, ResponseRuntime
    from jitsec.response.responder import ResponderSettings
    from jitsec.scanner.allowlist import ContentAllowlist

EngineName = Literal["auto", "hyperscan", "python"]


class PipelineSetupError(ValueError):
    """Rules, key, baseline or the leak response could not be set up."""


@dataclass(frozen=True, slots=True)
class RuleSettings:
    """Which rules to load and which matcher runs them."""

    packs: tuple[Path, ...] = ()
    include_default: bool = True
    gitleaks_config: Path | None = None
    engine: EngineName = "auto"
    disabled: frozenset[str] = frozenset()  # rule ids left out (a project's ``rules.disable``)
    disabled_by: str = "rules.disable"  # where they come from, for error messages


@dataclass(frozen=True, slots=True)
class PipelineSettings:
    """Everything a command decides about a scan, built once from its options."""

    rules: RuleSettings = field(default_factory=RuleSettings)
    baselines: tuple[Path, ...] = ()
    response: ResponseOptions | None = None
    first_seen_in_history: bool = True
    drop_accepted: bool = True  # False: baselines only drop detect-secrets SHA-1s (``baseline create``)
    new_baseline: CreatingHasher | None = None  # the baseline being made: findings get its secret hash
    flush_seconds: float = 5.0  # how long closing waits for the broker and sinks (a hook waits less)
    ignores: Ignores | None = None  # project allowlists, fingerprints, severity threshold (paths: the walk)


def with_ignores(settings: PipelineSettings, ignores: Ignores) -> PipelineSettings:
    """``settings`` with a project's ignores: its packs added, its disabled rules left out."""
    rules = settings.rules
    if ignores.project is not None:
        rules = replace(rules, packs=rules.packs + ignores.packs,
                        disabled=rules.disabled | ignores.disabled_rules,
                        disabled_by=f"{ignores.project.path}: rules.disable")
    return replace(settings, rules=rules, ignores=ignores)


def load_rules(settings: RuleSettings) -> RuleSet:
    try:
        ruleset = load_ruleset(settings.packs, include_default=settings.include_default,
                               gitleaks_config=settings.gitleaks_config)
    except RuleError as error:
        raise PipelineSetupError(f"invalid rules: {error}") from None
    try:
        ruleset = disable_rules(ruleset, settings.disabled)
    except ValueError as error:
        raise PipelineSetupError(f"{settings.disabled_by}: {error}") from None
    if not ruleset.rules:
        raise PipelineSetupError("no rules loaded (no default packs found and none given with --rules)")
    return ruleset


def load_baselines(paths: Sequence[Path]) -> Baseline:
    baseline = Baseline()
    for path in paths:
        try:
            baseline = baseline | load_baseline(path)
        except BaselineError as error:
            raise PipelineSetupError(str(error)) from None
    return baseline


def build_scanner(ruleset: RuleSet, engine: EngineName = "auto", baseline: Baseline | None = None,  # noqa: PLR0917
                  live_fingerprints: Callable[[str], bool] | None = None,
                  fingerprinter: Fingerprinter | None = None,
                  allowlist: ContentAllowlist | None = None, *,
                  new_baseline: CreatingHasher | None = None) -> Scanner:
    """A scanner keyed by the local fingerprint key (unless given one); secrets whose SHA-1 a
    detect-secrets baseline lists, or that ``allowlist`` allows, are dropped by the engine while
    still in hand. Findings get the salted secret hash of ``new_baseline`` (being made without a
    shared key), else of the salted baseline entries they may match."""
    try:
        fingerprinter = fingerprinter or Fingerprinter.load_or_create()
        baseline = baseline if baseline is not None else Baseline()
        hasher: SecretHasher | None = None
        if new_baseline is not None:
            hasher = None if fingerprinter.shared else new_baseline
        elif baseline.hashed:  # slow hashes this machine made before are read back (hooks run often)
            cache = HashCache(fingerprinter.fingerprint, default_cache_dir() / HASH_CACHE_FILE)
            hasher = MatchingHasher(baseline.hashed, cache)
        return Scanner(ruleset, fingerprinter, engine=engine, ignored_sha1=baseline.sha1,
                       live_fingerprints=live_fingerprints, allowlist=allowlist, secret_hasher=hasher)
    except (FingerprintKeyError, RuntimeError) as error:
        raise PipelineSetupError(str(error)) from None


class Pipeline:
    """A scanner and its chain of stages. ``run`` may be called more than once (``scan`` runs files,
    then addresses); ``close`` closes every stage once, last first, and the leak response with them."""

    def __init__(self, scanner: Scanner, stages: Sequence[Stage], *,
                 baseline: BaselineStage | None = None, first_seen: FirstSeenInHistory | None = None,
                 response: ResponseRuntime | None = None, ignored: IgnoreStage | None = None) -> None:
        self.scanner = scanner
        self.stages = tuple(stages)
        self.ignored = ignored
        self.baseline = baseline
        self.first_seen = first_seen
        self.response = response
        self.warnings: list[str] = []  # setup notes the command prints (a baseline that cannot match)
        self._closed = False
        self._lock = threading.Lock()

    @property
    def ruleset(self) -> RuleSet:
        return self.scanner.ruleset

    @property
    def accepted(self) -> int:
        """Findings the baselines accepted so far."""
        return self.baseline.accepted if self.baseline is not None else 0

    @property
    def allowlisted(self) -> int:
        """Findings the ignore stage dropped so far (fingerprints, commits, history paths, severity)."""
        return self.ignored.dropped if self.ignored is not None else 0

    @property
    def repeats(self) -> int:
        """History findings dropped as repeats of one already reported at its introducing commit."""
        return self.first_seen.repeats if self.first_seen is not None else 0

    def run(self, sources: Sequence[Source], *, stop: threading.Event | None = None) -> PipelineStats:
        """Run ``sources`` through the chain; a rule whose regex was stopped meanwhile (catastrophic
        backtracking) is reported in the stats' errors as ``rule-timeout``: the scan is incomplete."""
        if not sources:
            return PipelineStats()
        stopped_before = self.scanner.stats.stopped
        stats = run_sources(sources, self.scanner, self.stages, stop=stop)
        for rule_id, count in self.scanner.stats.stopped.items():
            if count > stopped_before.get(rule_id, 0):
                windows = count - stopped_before.get(rule_id, 0)
                stats.errors.record("rule-timeout", (
                    f"rule {rule_id!r} was stopped on {windows} window(s): its regex ran over "
                    f"{REGEX_TIMEOUT:g} s (catastrophic backtracking?), so its findings there are missing"))
        return stats

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        for stage in reversed(self.stages):
            stage.close()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()


def build_pipeline(
    settings: PipelineSettings,
    *,
    tail: Sequence[Stage] = (),
    ruleset: RuleSet | None = None,
    client: BrokerClient | None = None,
    extra_sinks: Sequence[Sink] = (),
    fingerprinter: Fingerprinter | None = None,
    responder_settings: ResponderSettings | None = None,
) -> Pipeline:
    """Rules, baselines, the leak response (when ``settings.response`` asks for one), the scanner and
    the stages: ignores → baseline → first seen in history → leak response → ``tail`` (the command's
    own).

    ``ruleset`` skips loading when the caller has it already; ``client`` is a broker client of the
    caller's (a hook's short timeout); ``extra_sinks`` get incidents besides the ``--alert`` ones;
    ``fingerprinter`` replaces the local key (the demo's throw-away one); ``responder_settings`` tune
    the leak response."""
    ruleset = ruleset if ruleset is not None else load_rules(settings.rules)
    baseline = load_baselines(settings.baselines)
    runtime = _build_response(settings, ruleset.digest, client, extra_sinks, responder_settings)
    fleet_client = runtime.client if runtime is not None else None
    state_dir = settings.response.state_dir if settings.response is not None else None
    if fleet_client is not None:
        from jitsec.response.fleet import FleetReporter, fleet_fingerprinter  # noqa: PLC0415 - with a broker only
    try:
        if fingerprinter is None and fleet_client is not None and state_dir is not None:
            fingerprinter = fleet_fingerprinter(fleet_client, state_dir)  # one per secret, fleet-wide
        ignores = settings.ignores
        scanner = build_scanner(ruleset, settings.rules.engine, baseline,
                                runtime.live_fingerprints if runtime is not None else None, fingerprinter,
                                ignores.content if ignores is not None else None,
                                new_baseline=settings.new_baseline)
    except BaseException:
        if runtime is not None:
            runtime.close()
        raise
    baseline_stage = BaselineStage(baseline) if not baseline.empty and settings.drop_accepted else None
    first_seen = FirstSeenInHistory() if settings.first_seen_in_history else None
    ignored = settings.ignores.stage() if settings.ignores is not None else None
    stages = (ignored, baseline_stage, first_seen, runtime)
    chain: list[Stage] = [stage for stage in stages if stage is not None]
    chain.extend(tail)
    pipeline = Pipeline(scanner, chain, baseline=baseline_stage, first_seen=first_seen, response=runtime,
                        ignored=ignored)
    fingerprinter = scanner.fingerprinter
    if runtime is not None and fleet_client is not None and state_dir is not None:  # the fleet's incidents
        runtime.responder.fleet = FleetReporter(fleet_client, state_dir, key_id=fingerprinter.key_id)
    pipeline.warnings.extend(baseline.key_warnings(fingerprinter.key_id if fingerprinter.shared else None))
    return pipeline


def _build_response(settings: PipelineSettings, rules_digest: str, client: BrokerClient | None,
                    extra_sinks: Sequence[Sink], responder_settings: ResponderSettings | None,
                    ) -> ResponseRuntime | None:
    options = settings.response
    if options is None or not (options.enabled or extra_sinks):
        return None
    from jitsec.response.options import ResponseSetupError, build_response  # noqa: PLC0415 - a hook without a broker skips it

    try:
        return build_response(options, client=client, rules_digest=rules_digest,
                              extra_sinks=tuple(extra_sinks), settings=responder_settings,
                              close_timeout=settings.flush_seconds)
    except (OSError, ResponseSetupError) as error:  # e.g. the state dir (spools, outbox) is unusable
        raise PipelineSetupError(str(error)) from None

