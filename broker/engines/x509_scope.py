"""The X.509 scope grammar: ``x509:name:NAME``, one DNS name the certificate may carry.

A lease's certificate always names its agent and task (a URI SAN and the CN); scopes add the DNS
names a TLS server may match the client against, and policy lists which an agent may ask for. Names
are lowercase host names (letters, digits, ``-`` inside labels, dots between labels): no wildcard, no
trailing dot, at most 253 characters, so a scope means exactly one name.
"""

from __future__ import annotations

from collections.abc import Sequence

import regex
from jitsec.broker.errors import ScopeError

PREFIX = "x509:name:"
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_NAME = regex.compile(rf"{_LABEL}(?:\.{_LABEL})*")
MAX_NAME_LENGTH = 253


def parse_scope(scope: str) -> str:
    """The DNS name of one scope; raises ``ScopeError`` saying what the grammar allows."""
    if not scope.startswith(PREFIX):
        raise ScopeError(f"x509 scopes are written {PREFIX}NAME, e.g. {PREFIX}api.internal")
    name = scope[len(PREFIX):]
    if len(name) > MAX_NAME_LENGTH or not _NAME.fullmatch(name):
        raise ScopeError(
            "the NAME of an x509 scope is a lowercase host name: labels of letters, digits and '-' "
            "separated by dots, no wildcard, at most 253 characters"
        )
    return name


def parse_scopes(scopes: Sequence[str]) -> tuple[str, ...]:
    """Every scope's name, in order, without repeats."""
    return tuple(dict.fromkeys(parse_scope(scope) for scope in scopes))
