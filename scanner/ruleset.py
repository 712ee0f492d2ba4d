"""Rule packs as data, loaded in two steps: raw TOML → validated, compiled ``Rule`` objects.

Every error names the pack, the rule and the field. No field can name code: validators are looked up
in the scanner's fixed registry (``scanner.validators``). ``RuleSet.digest`` identifies what was loaded
(the matching-relevant content of every rule, not file names), for alerts and the Hyperscan cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import marshal
import os
import sys
import tomllib
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import regex
from jitsec.scanner.cache import default_cache_dir
from jitsec.scanner.judges import JUDGES
from jitsec.scanner.rules_model import (  # noqa: F401 - re-exported: callers import them from here
    CONTEXTS,
    Allowlist,
    LazyPattern,
    Rule,
    RuleError,
    RuleExample,
    RuleSet,
    check_pairs,
    make_ruleset,
    ruleset_digest,
)
from jitsec.scanner.validators import BROKER_VALIDATORS, VALIDATORS

from jitsec.kernel.records import Severity

_KEBAB = LazyPattern(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_RULE_FIELDS = {
    "id", "description", "regex", "keywords", "severity", "tags", "entropy", "validator", "judge",
    "multiline", "hyperscan", "allowlist", "example", "counterexample", "revoke",
    "remediation", "pairs_with", "pair_lines",
}
_ALLOWLIST_FIELDS = {"regexes", "stopwords", "context"}
_EXAMPLE_FIELDS = {"secret", "key", "text", "contexts"}
_VALIDATION_FORMAT = "6"  # bump when what parse_pack checks changes: old markers then stop counting
_SEVERITIES = {severity.value: severity for severity in Severity}  # a dict: Severity(text) costs a hook run
_RULE_FLAGS = int(regex.ASCII | regex.MULTILINE)  # or-ed once: per rule, the flag enums cost a hook run
MAX_PAIR_LINES = 20  # a pair further apart than this is two secrets, not one credential


def default_packs_dir() -> Path:
    """The installed `jitsec.rules` package: the default packs ship as its data files."""
    return Path(str(resources.files("jitsec.rules")))


def default_pack_paths() -> list[Path]:
    directory = default_packs_dir()
    return sorted(directory.glob("*.toml")) if directory.is_dir() else []


def load_ruleset(
    extra_packs: Sequence[Path] = (),
    *,
    include_default: bool = True,
    gitleaks_config: Path | None = None,
) -> RuleSet:
    """Load the default packs (unless told not to, and the gitleaks config does not ask for them with
    ``[extend] useDefault``), extra packs and an optional gitleaks config.

    Without a gitleaks config, the whole loaded set is kept in the cache keyed by the text of every
    pack and of the published examples: a later load of the same texts (every pre-commit hook run)
    rebuilds it from one file, without parsing, checking or digesting anything again."""
    gitleaks = None
    if gitleaks_config is not None:
        from jitsec.scanner.gitleaks import read_gitleaks_config  # noqa: PLC0415 - optional path

        gitleaks = read_gitleaks_config(gitleaks_config)
        include_default = include_default or gitleaks.use_default
    paths = [*(default_pack_paths() if include_default else []), *map(Path, extra_packs)]
    texts = [(path, read_pack_text(path)) for path in paths]
    snapshot = _snapshot_path(texts) if gitleaks is None else None
    if snapshot is not None:
        restored = _read_snapshot(snapshot)
        if restored is not None:
            return restored
    rules: list[Rule] = []
    packs: list[str] = []
    raw_packs: list[tuple[str, dict[str, Any]]] = []
    for path, text in texts:
        raw, (name, pack_rules) = _load_pack_text(path, text)
        if name in packs:
            raise RuleError(name, None, "pack.name", f"duplicate pack name ({path})")
        packs.append(name)
        rules.extend(pack_rules)
        raw_packs.append((str(path), raw))
    if gitleaks_config is not None and gitleaks is not None:
        packs.append(f"gitleaks:{gitleaks_config.name}")
        rules.extend(gitleaks.rules)
    check_pairs(rules)
    ruleset = make_ruleset(rules, packs, load_published_examples())
    if snapshot is not None:
        _write_snapshot(snapshot, ruleset, raw_packs)
    return ruleset


def _snapshot_path(texts: Sequence[tuple[Path, str]]) -> Path | None:
    """Where the loaded set of exactly these pack texts (and published examples) is kept."""
    digest = hashlib.sha256(f"{_VALIDATION_FORMAT}\0{regex.__version__}\0{sys.version}".encode())
    for path, text in texts:  # the path too: errors and reports name it
        digest.update(f"\0pack\0{path}\0{text}".encode())
    with contextlib.suppress(OSError):
        digest.update(b"\0examples\0" + published_examples_path().read_bytes())
    try:
        return default_cache_dir() / "rulesets" / f"{digest.hexdigest()[:32]}.marshal"
    except RuntimeError:  # no home directory to put a cache in
        return None


def _read_snapshot(path: Path) -> RuleSet | None:
    """The set a snapshot holds, or None when it is missing or damaged (the packs are read instead).
    Kept with ``marshal`` (plain dicts, lists and strings; reading runs nothing): the interpreter reads
    it natively, where importing a JSON library alone cost a hook run more than the whole read."""
    try:
        raw = marshal.loads(path.read_bytes())  # noqa: S302 - the user's own cache, plain data
        # every pack passed parse_pack when the snapshot was written: only rebuilt here
        rules = [_trusted_rule(entry, pack["pack"]["name"]) for _label, pack in raw["packs"]
                 for entry in pack["rule"]]
        return RuleSet(rules=tuple(rules), digest=str(raw["digest"]), packs=tuple(raw["names"]),
                       published_examples=frozenset(raw["published_examples"]))
    except (OSError, ValueError, KeyError, TypeError, EOFError, RuleError):
        return None


def _write_snapshot(path: Path, ruleset: RuleSet, raw_packs: Sequence[tuple[str, dict[str, Any]]]) -> None:
    body = {
        "digest": ruleset.digest,
        "names": list(ruleset.packs),
        "packs": [list(pair) for pair in raw_packs],
        "published_examples": sorted(ruleset.published_examples),
    }
    with contextlib.suppress(OSError, TypeError, ValueError):  # a miss only costs the next load
        path.parent.mkdir(parents=True, exist_ok=True)
        _prune(path.parent, keep=8)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_bytes(marshal.dumps(body))
        partial.replace(path)


def _prune(directory: Path, keep: int) -> None:
    """Keep the ``keep`` newest snapshots: every rule edit makes a new one."""
    old = sorted(directory.glob("*.marshal"), key=lambda entry: entry.stat().st_mtime, reverse=True)[keep:]
    for entry in old:
        with contextlib.suppress(OSError):
            entry.unlink()


def disable_rules(ruleset: RuleSet, rule_ids: Iterable[str]) -> RuleSet:
    """``ruleset`` without the rules ``rule_ids`` name. An id no rule has (a typo) and a rule that
    finds broker credentials (they are never ignored) are ``ValueError``s naming the id."""
    wanted = set(rule_ids)
    if not wanted:
        return ruleset
    known = {rule.id: rule for rule in ruleset.rules}
    for rule_id in sorted(wanted):
        if rule_id not in known:
            raise ValueError(f"{rule_id!r}: no such rule (see `jitsec rules list`)")
        if known[rule_id].validator in BROKER_VALIDATORS:
            raise ValueError(f"{rule_id!r}: finds broker credentials, which are never ignored")
    kept = [rule for rule in ruleset.rules if rule.id not in wanted]
    return make_ruleset(kept, ruleset.packs, ruleset.published_examples)


def published_examples_path() -> Path:
    return default_packs_dir() / "reference" / "published-examples.toml"


def load_published_examples(path: Path | None = None) -> frozenset[str]:
    """The values vendors publish as examples (``rules/reference/published-examples.toml``): each entry
    has ``value``, ``vendor`` and ``published`` (where); a malformed file is a RuleError naming it."""
    path = path or published_examples_path()
    label = str(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return frozenset()
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise RuleError(label, None, None, f"cannot read: {error}") from error
    values = set()
    for index, entry in enumerate(raw.get("example", [])):
        where = f"example #{index + 1}"
        if not isinstance(entry, dict) or set(entry) != {"value", "vendor", "published"}:
            raise RuleError(label, where, None, "needs exactly value, vendor and published")
        if not all(isinstance(entry[key], str) and entry[key].strip() for key in entry):
            raise RuleError(label, where, None, "value, vendor and published must be non-empty strings")
        values.add(entry["value"])
    return frozenset(values)


def read_pack_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        raise RuleError(str(path), None, None, f"cannot read: {reason}") from error


def load_pack(path: Path) -> tuple[str, list[Rule]]:
    """Read one pack file; returns the pack name and its rules.

    The first time this exact text is loaded it is parsed as TOML and every regex is compiled (so every
    error names pack, rule and field); the parsed form is then kept as JSON in the cache, and later
    loads read that (TOML parsing was most of a scan's start-up) and compile regexes on first use
    (``LazyPattern``)."""
    return _load_pack_text(path, read_pack_text(path))[1]


def _load_pack_text(path: Path, text: str) -> tuple[dict[str, Any], tuple[str, list[Rule]]]:
    """The parsed TOML of one pack text and its rules (see ``load_pack``)."""
    label = str(path)
    cached = _parsed_cache(text)
    raw = _read_cached(cached) if cached is not None else None
    if raw is not None:
        with contextlib.suppress(RuleError):  # a damaged cache entry: read the pack itself instead
            return raw, parse_pack(raw, label, compile_now=False)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise RuleError(label, None, None, f"not valid TOML: {error}") from error
    parsed = parse_pack(raw, label)
    if cached is not None:
        with contextlib.suppress(OSError, TypeError, ValueError):  # a cache miss only costs the next load
            cached.parent.mkdir(parents=True, exist_ok=True)
            partial = cached.with_suffix(f".{os.getpid()}.tmp")
            partial.write_text(json.dumps(raw), encoding="utf-8")
            partial.replace(cached)
    return raw, parsed


def _parsed_cache(text: str) -> Path | None:
    """Where the parsed form of this pack text (for this ``regex`` release) is kept once it compiled."""
    key = hashlib.sha256(f"{_VALIDATION_FORMAT}\0{regex.__version__}\0{text}".encode()).hexdigest()[:32]
    try:
        return default_cache_dir() / "parsed-packs" / f"{key}.json"
    except RuntimeError:  # no home directory to put a cache in
        return None


def _read_cached(path: Path) -> dict[str, Any] | None:
    import orjson  # noqa: PLC0415 - only when a pack text is new to the snapshot cache

    try:
        raw = orjson.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return raw if isinstance(raw, dict) else None


def parse_pack(raw: dict[str, Any], label: str, *, compile_now: bool = True) -> tuple[str, list[Rule]]:
    """Validate the raw schema of one pack (already parsed TOML) and compile its rules (with
    ``compile_now=False``, only for a pack text known to compile: regexes then compile on first use)."""
    unknown = set(raw) - {"pack", "rule"}
    if unknown:
        raise RuleError(label, None, sorted(unknown)[0], "unknown top-level table")
    header = raw.get("pack")
    if not isinstance(header, dict):
        raise RuleError(label, None, "pack", "missing [pack] table")
    name = header.get("name")
    if not isinstance(name, str) or not _KEBAB.fullmatch(name):
        raise RuleError(label, None, "pack.name", "must be a kebab-case string")
    if not isinstance(header.get("description", ""), str):
        raise RuleError(name, None, "pack.description", "must be a string")
    raw_rules = raw.get("rule", [])
    if not isinstance(raw_rules, list) or not raw_rules:
        raise RuleError(name, None, "rule", "a pack needs at least one [[rule]]")
    if compile_now:
        rules = [compile_rule(entry, name, index) for index, entry in enumerate(raw_rules)]
    else:
        rules = [_trusted_rule(entry, name) for entry in raw_rules]
    ids = [rule.id for rule in rules]
    for rule_id in ids:
        if ids.count(rule_id) > 1:
            raise RuleError(name, rule_id, "id", "duplicate rule id in this pack")
    return name, rules


def compile_rule(entry: Any, pack: str, index: int = 0, *, compile_now: bool = True) -> Rule:
    if not isinstance(entry, dict):
        raise RuleError(pack, f"#{index + 1}", None, "a [[rule]] must be a table")
    rule_id = entry.get("id")
    if not isinstance(rule_id, str) or not _KEBAB.fullmatch(rule_id):
        raise RuleError(pack, f"#{index + 1}", "id", "must be a kebab-case string")

    def fail(field_name: str, problem: str) -> RuleError:
        return RuleError(pack, rule_id, field_name, problem)

    unknown = set(entry) - _RULE_FIELDS
    if unknown:
        raise fail(sorted(unknown)[0], "unknown field")
    description = _string(entry, "description", fail, required=True)
    pattern = _pattern(entry.get("regex"), "regex", fail, ascii_classes=True, compile_now=compile_now)
    if compile_now and "secret" not in pattern.groupindex:
        raise fail("regex", "needs a named group `secret`")
    keywords = _strings(entry, "keywords", fail)
    if not keywords:
        raise fail("keywords", "needs at least one literal keyword")
    if any(not k.strip() for k in keywords):
        raise fail("keywords", "keywords must not be blank")
    severity_text = _string(entry, "severity", fail, required=True)
    try:
        severity = Severity(severity_text)
    except ValueError:
        raise fail("severity", "must be one of low, medium, high, critical") from None
    entropy = entry.get("entropy")
    if entropy is not None and (isinstance(entropy, bool) or not isinstance(entropy, int | float)
                                or not 0 <= entropy <= 8):
        raise fail("entropy", "must be a number of bits per character between 0 and 8")
    validator = entry.get("validator")
    if validator is not None and validator not in VALIDATORS:
        raise fail("validator", f"unknown validator; known: {', '.join(sorted(VALIDATORS))}")
    judge = entry.get("judge")
    if judge is not None and (not isinstance(judge, str) or judge not in JUDGES):
        raise fail("judge", f"unknown judge; known: {', '.join(sorted(JUDGES))}")
    multiline = entry.get("multiline", False)
    if not isinstance(multiline, bool):
        raise fail("multiline", "must be true or false")
    hyperscan = entry.get("hyperscan")
    if hyperscan is not None and (not isinstance(hyperscan, str) or not hyperscan):
        raise fail("hyperscan", "must be a non-empty pattern string")
    revoke = _web_address(entry, "revoke", fail)
    remediation = _string(entry, "remediation", fail)
    examples = _examples(entry.get("example"), "example", fail)
    counterexamples = _examples(entry.get("counterexample"), "counterexample", fail)
    pairs_with, pair_lines = _pairing(entry, rule_id, fail)
    return Rule(
        id=rule_id,
        pack=pack,
        description=description,
        pattern=pattern,
        keywords=tuple(k.lower() for k in keywords),
        severity=severity,
        tags=tuple(_strings(entry, "tags", fail)),
        entropy=float(entropy) if entropy is not None else None,
        validator=validator,
        judge=judge,
        multiline=multiline,
        hyperscan=hyperscan,
        allowlist=_allowlist(entry.get("allowlist"), fail, compile_now),
        examples=examples,
        counterexamples=counterexamples,
        revoke=revoke,
        remediation=remediation,
        pairs_with=pairs_with,
        pair_lines=pair_lines,
    )


def _pairing(entry: dict[str, Any], rule_id: str, fail: Any) -> tuple[tuple[str, ...], int]:
    """``pairs_with`` (rule ids, not this one) and ``pair_lines`` (0 = same line, at most
    ``MAX_PAIR_LINES``; only with ``pairs_with``)."""
    partners = _strings(entry, "pairs_with", fail)
    if any(not _KEBAB.fullmatch(partner) for partner in partners):
        raise fail("pairs_with", "must list rule ids (kebab-case strings)")
    if rule_id in partners:
        raise fail("pairs_with", "a rule cannot pair with itself")
    lines = entry.get("pair_lines", 0)
    if isinstance(lines, bool) or not isinstance(lines, int) or not 0 <= lines <= MAX_PAIR_LINES:
        raise fail("pair_lines", f"must be a whole number of lines from 0 (same line) to {MAX_PAIR_LINES}")
    if "pair_lines" in entry and not partners:
        raise fail("pair_lines", "needs `pairs_with`")
    return tuple(dict.fromkeys(partners)), lines


def _trusted_rule(entry: dict[str, Any], pack: str) -> Rule:
    """The rule of a cached pack entry, which passed ``compile_rule`` when it was cached: only
    rebuilt, with its regexes left to compile on first use (checking every field of every rule again
    was most of a pre-commit hook's start-up). A cache entry of the wrong shape raises RuleError and
    the pack is read from its text instead."""
    try:
        allow = entry.get("allowlist") or {}
        entropy = entry.get("entropy")
        return Rule(
            id=entry["id"],
            pack=pack,
            description=entry["description"],
            pattern=LazyPattern(entry["regex"], _RULE_FLAGS),
            keywords=tuple(map(str.lower, entry["keywords"])),
            severity=_SEVERITIES[entry["severity"]],
            tags=tuple(entry.get("tags", ())),
            entropy=float(entropy) if entropy is not None else None,
            validator=entry.get("validator"),
            judge=entry.get("judge"),
            multiline=entry.get("multiline", False),
            hyperscan=entry.get("hyperscan"),
            revoke=entry.get("revoke", ""),
            remediation=entry.get("remediation", ""),
            pairs_with=tuple(entry.get("pairs_with", ())),
            pair_lines=int(entry.get("pair_lines", 0)),
            allowlist=Allowlist(
                regexes=tuple(LazyPattern(p) for p in allow.get("regexes", ())),
                stopwords=tuple(word.lower() for word in allow.get("stopwords", ())),
                context=tuple(LazyPattern(p) for p in allow.get("context", ())),
            ) if allow else Allowlist(),
            examples=_trusted_examples(entry["example"]),
            counterexamples=_trusted_examples(entry["counterexample"]),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise RuleError(pack, str(entry.get("id")) if isinstance(entry, dict) else None, None,
                        f"damaged cache entry: {error}") from None


def _web_address(entry: dict[str, Any], name: str, fail: Any) -> str:
    """An optional ``https://`` address (reports link to it: it must be one)."""
    text = _string(entry, name, fail)
    parts = urlsplit(text)
    if text and (parts.scheme != "https" or not parts.netloc or any(c.isspace() for c in text)):
        raise fail(name, "must be an https:// address (the page where such credentials are revoked)")
    return text


def _string(entry: dict[str, Any], name: str, fail: Any, *, required: bool = False) -> str:
    value = entry.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise fail(name, "must be a non-empty string")
    return value


def _strings(entry: dict[str, Any], name: str, fail: Any) -> list[str]:
    value = entry.get(name, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise fail(name, "must be a list of strings")
    return value


def _pattern(
    source: Any, name: str, fail: Any, *, ascii_classes: bool = False, compile_now: bool = True
) -> LazyPattern:
    """Rule regexes use ASCII classes (``\\w``, ``\\b``) and line anchors (``^``/``$``), like the
    Hyperscan database built from them, so both engines agree on any text."""
    if not isinstance(source, str) or not source:
        raise fail(name, "must be a non-empty regex string")
    pattern = LazyPattern(source, _RULE_FLAGS if ascii_classes else 0)
    if compile_now:
        try:
            pattern.compiled  # noqa: B018 - compiled now so that an error names pack, rule and field
        except regex.error as error:
            raise fail(name, f"does not compile: {error}") from None
    return pattern


def _allowlist(raw: Any, fail: Any, compile_now: bool = True) -> Allowlist:
    if raw is None:
        return Allowlist()
    if not isinstance(raw, dict):
        raise fail("allowlist", "must be a table")
    unknown = set(raw) - _ALLOWLIST_FIELDS
    if unknown:
        raise fail(f"allowlist.{sorted(unknown)[0]}", "unknown field")
    regexes = tuple(_pattern(p, "allowlist.regexes", fail, compile_now=compile_now)
                    for p in _strings(raw, "regexes", fail))
    context = tuple(_pattern(p, "allowlist.context", fail, compile_now=compile_now)
                    for p in _strings(raw, "context", fail))
    stopwords = tuple(word.lower() for word in _strings(raw, "stopwords", fail))
    return Allowlist(regexes=regexes, stopwords=stopwords, context=context)


def _trusted_examples(raw: list[dict[str, Any]]) -> tuple[RuleExample, ...]:
    """Examples of a cached pack entry (see ``_trusted_rule``)."""
    return tuple(
        RuleExample(secret=item.get("secret"), key=item.get("key", "token"), text=item.get("text"),
                    contexts=tuple(item.get("contexts", CONTEXTS)))
        for item in raw
    )


def _examples(raw: Any, name: str, fail: Any) -> tuple[RuleExample, ...]:
    if not isinstance(raw, list) or not raw:
        raise fail(name, f"needs at least one [[rule.{name}]]")
    examples = []
    for index, item in enumerate(raw):
        where = f"{name}[{index}]"
        if not isinstance(item, dict):
            raise fail(where, "must be a table")
        unknown = set(item) - _EXAMPLE_FIELDS
        if unknown:
            raise fail(f"{where}.{sorted(unknown)[0]}", "unknown field")
        secret, text = item.get("secret"), item.get("text")
        if secret is not None and (not isinstance(secret, str) or not secret):
            raise fail(f"{where}.secret", "must be a non-empty string")
        if text is not None and (not isinstance(text, str) or not text):
            raise fail(f"{where}.text", "must be a non-empty string")
        if secret is None and text is None:
            raise fail(where, "needs `secret` or `text`")
        if name == "example" and secret is None:
            raise fail(f"{where}.secret", "an example must name the secret it expects")
        if secret is not None and text is not None and secret not in text:
            raise fail(f"{where}.text", "must contain the secret")
        key = item.get("key", "token")
        if not isinstance(key, str) or not regex.fullmatch(r"[A-Za-z][A-Za-z0-9_.-]*", key):
            raise fail(f"{where}.key", "must be an identifier-like name")
        contexts = item.get("contexts", list(CONTEXTS))
        if not isinstance(contexts, list) or not contexts or any(c not in CONTEXTS for c in contexts):
            raise fail(f"{where}.contexts", f"must be a non-empty list drawn from {', '.join(CONTEXTS)}")
        examples.append(RuleExample(secret=secret, key=key, text=text, contexts=tuple(contexts)))
    return tuple(examples)


