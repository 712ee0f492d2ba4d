"""Regexes that compile on first use.

Compiling with ``regex`` is the largest part of the scanner's start-up: hundreds of rule regexes
and the judges' and filters' own patterns, while a typical pre-commit hook gives candidates to a
handful of rules and may confirm nothing at all. A ``LazyPattern`` keeps the source and flags and
compiles them the first time a match method is called. ``pattern`` and ``flags`` are the source and
the flags asked for, never a compiled pattern's (which depend on the regex engine), so anything
derived from them (a rule-set digest) is the same whether or not anything was compiled. Compiling
twice from two threads is harmless: both results are equal and either may be kept.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import regex


class LazyPattern:
    """A ``regex`` pattern compiled on first use; the match methods take what ``regex``'s do."""

    __slots__ = ("_compiled", "flags", "pattern")

    def __init__(self, pattern: str, flags: int = 0) -> None:
        self.pattern, self.flags = pattern, flags
        self._compiled: regex.Pattern[str] | None = None

    @property
    def compiled(self) -> regex.Pattern[str]:
        compiled = self._compiled
        if compiled is None:
            compiled = self._compiled = regex.compile(self.pattern, self.flags)
        return compiled

    @property
    def groupindex(self) -> Mapping[str, int]:
        return self.compiled.groupindex

    def search(self, string: str, *args: Any, **kwargs: Any) -> regex.Match[str] | None:
        return self.compiled.search(string, *args, **kwargs)

    def match(self, string: str, *args: Any, **kwargs: Any) -> regex.Match[str] | None:
        return self.compiled.match(string, *args, **kwargs)

    def fullmatch(self, string: str, *args: Any, **kwargs: Any) -> regex.Match[str] | None:
        return self.compiled.fullmatch(string, *args, **kwargs)

    def finditer(self, string: str, *args: Any, **kwargs: Any) -> Iterator[regex.Match[str]]:
        return self.compiled.finditer(string, *args, **kwargs)

    def findall(self, string: str, *args: Any, **kwargs: Any) -> list[Any]:
        return self.compiled.findall(string, *args, **kwargs)

    def sub(
        self, repl: str | Callable[[regex.Match[str]], str], string: str, *args: Any, **kwargs: Any
    ) -> str:
        return self.compiled.sub(repl, string, *args, **kwargs)

    def split(self, string: str, *args: Any, **kwargs: Any) -> list[str | Any]:
        return self.compiled.split(string, *args, **kwargs)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LazyPattern) and (self.pattern, self.flags) == (other.pattern, other.flags)

    def __hash__(self) -> int:
        return hash((self.pattern, self.flags))

    def __repr__(self) -> str:
        return f"LazyPattern({self.pattern!r}, flags={self.flags})"
