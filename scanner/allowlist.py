"""Allowlists that apply to every rule: what a project (``.jitsec.toml``) or a gitleaks config's global
``[allowlist]`` says is not a secret, by content or by path.

``ContentAllowlist`` is checked by the engine while the secret is still in hand (a finding holds no
plaintext): regexes searched in the secret, in the whole line, or in the rule's whole match, and
stopwords contained in the secret. ``PathRules`` say which paths are left out: globs (``--exclude``,
``.jitsec.toml``) and regexes (gitleaks ``paths``).

Neither ever hides a broker-format credential or a live broker credential: the engine and the ignore
stage check that themselves, whatever these say.

Globs, as ``--exclude`` and ``.jitsec.toml`` read them:

- a pattern without ``/`` matches a file or directory name anywhere (``*.min.js``, ``node_modules``);
- a pattern with ``/`` matches a path from the base (``tests/fixtures/**``, ``docs/*.md``); a leading
  ``/`` or ``./`` is the base itself;
- ``*`` is any run of characters within a name, ``?`` one character, ``[abc]``/``[!abc]`` a class,
  ``**`` any number of directories; a trailing ``/`` is the same as none;
- a matching directory leaves out everything below it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import regex

REGEX_TIMEOUT = 0.25  # as the engine's: a backtracking allowlist regex is stopped, and allows nothing


class GlobError(ValueError):
    """A glob that cannot be used (an unclosed class, an empty pattern)."""


def glob_regex(glob: str) -> str:
    """The regular expression (full match, on ``/``-separated paths) a glob stands for."""
    pattern = glob.strip()
    if pattern.startswith("./"):
        pattern = pattern[2:]
    pattern = pattern.lstrip("/").rstrip("/")
    while pattern.endswith("/**"):  # everything below a directory: the directory itself says that
        pattern = pattern[:-3]
    if not pattern:
        raise GlobError(f"{glob!r}: empty pattern")
    out: list[str] = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if pattern.startswith("**", index):
            index += 2
            if pattern.startswith("/", index):  # "**/": zero or more directories
                out.append("(?:.*/)?")
                index += 1
            else:
                out.append(".*")
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            close = pattern.find("]", index + 2 if pattern.startswith(("[!", "[]"), index) else index + 1)
            if close < 0:
                raise GlobError(f"{glob!r}: unclosed [")
            body = pattern[index + 1:close]
            negate = body.startswith("!")
            body = body[1:] if negate else body
            body = body.replace("\\", "\\\\")
            body = "\\^" + body[1:] if body.startswith("^") else body
            out.append("[" + ("^/" if negate else "") + body + "]")
            index = close
        else:
            out.append(regex.escape(char))
        index += 1
    return "".join(out)


@dataclass(frozen=True, slots=True)
class Glob:
    """One compiled glob; ``anchored`` when it names a path from the base rather than a name."""

    text: str
    pattern: regex.Pattern[str]
    anchored: bool

    @classmethod
    def compile(cls, text: str) -> Glob:
        anchored = "/" in text.strip().rstrip("/")
        return cls(text, regex.compile(glob_regex(text)), anchored)


@dataclass(frozen=True, slots=True)
class PathRules:
    """Paths left out: globs (from the base) and regexes (searched in the path, as gitleaks does)."""

    globs: tuple[Glob, ...] = ()
    regexes: tuple[regex.Pattern[str], ...] = ()

    @classmethod
    def of(cls, globs: Iterable[str] = (), regexes: Iterable[regex.Pattern[str]] = ()) -> PathRules:
        return cls(tuple(Glob.compile(text) for text in globs), tuple(regexes))

    def __bool__(self) -> bool:
        return bool(self.globs or self.regexes)

    def matches(self, path: str) -> bool:
        """Whether ``path`` (``/``-separated, relative to the base) or a directory above it is left out."""
        path = path[2:] if path.startswith("./") else path
        parts = [part for part in path.split("/") if part]
        for glob in self.globs:
            for depth in range(1, len(parts) + 1):
                target = "/".join(parts[:depth]) if glob.anchored else parts[depth - 1]
                if glob.pattern.fullmatch(target):
                    return True
        return any(_search(pattern, path) for pattern in self.regexes)


@dataclass(frozen=True, slots=True)
class ContentAllowlist:
    """Regexes and stopwords that say a candidate is not a secret, whatever rule found it."""

    secrets: tuple[regex.Pattern[str], ...] = ()  # searched in the secret
    lines: tuple[regex.Pattern[str], ...] = ()  # searched in the whole line holding the secret
    matches: tuple[regex.Pattern[str], ...] = ()  # searched in the rule's whole match (gitleaks "match")
    stopwords: tuple[str, ...] = ()  # lowercase; contained in the secret

    def __bool__(self) -> bool:
        return bool(self.secrets or self.lines or self.matches or self.stopwords)

    def __or__(self, other: ContentAllowlist) -> ContentAllowlist:
        return ContentAllowlist(self.secrets + other.secrets, self.lines + other.lines,
                                self.matches + other.matches, self.stopwords + other.stopwords)

    def allows(self, secret: str, line: str, match: str) -> bool:
        """Whether the candidate is allowlisted (the caller keeps broker credentials regardless)."""
        if self.stopwords:
            lowered = secret.lower()
            if any(word in lowered for word in self.stopwords):
                return True
        return (any(_search(pattern, secret) for pattern in self.secrets)
                or any(_search(pattern, line) for pattern in self.lines)
                or any(_search(pattern, match) for pattern in self.matches))


class PatternError(ValueError):
    """A user regex that does not compile; ``where`` names the key and the pattern's index."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}")
        self.where = where
        self.problem = problem


def compile_regexes(sources: Sequence[object], where: str) -> tuple[regex.Pattern[str], ...]:
    """Compile user regexes; a bad one is a ``PatternError`` naming ``where`` and its index."""
    compiled = []
    for index, source in enumerate(sources):
        if not isinstance(source, str):
            raise PatternError(f"{where}[{index}]", "must be a string")
        try:
            compiled.append(regex.compile(source))
        except regex.error as error:
            raise PatternError(f"{where}[{index}]", f"does not compile: {error}") from None
    return tuple(compiled)


def _search(pattern: regex.Pattern[str], text: str) -> bool:
    try:
        return pattern.search(text, timeout=REGEX_TIMEOUT) is not None
    except TimeoutError:
        return False
