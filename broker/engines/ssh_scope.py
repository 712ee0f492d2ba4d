"""The SSH scope grammar: what a certificate lets its holder do, one scope per grant.

    ssh:principal:NAME      log in as NAME (a valid principal; sshd matches it against the user name
                            or AuthorizedPrincipalsFile). At least one per lease.
    ssh:source:CIDR         only from this network (``source-address``); several are joined. The
                            canonical spelling of the network (``10.0.0.0/8``, ``::1/128``) is required.
    ssh:command:NAME        run only the command the engine's config names NAME (``force-command``);
                            at most one. The command line lives in config, never in a scope.
    ssh:permit:FEATURE      allow pty, port-forwarding, agent-forwarding, x11-forwarding or user-rc
                            (certificate extensions). None by default: a plain certificate runs commands
                            without a terminal and forwards nothing.

Pure parsing; the engine turns the parsed set into certificate fields.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import regex
from jitsec.broker.errors import ScopeError

PREFIX = "ssh:"
PRINCIPAL = regex.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}")
COMMAND_NAME = regex.compile(r"[a-z0-9][a-z0-9_.\-]{0,63}")
PERMITS = {
    "pty": "permit-pty",
    "port-forwarding": "permit-port-forwarding",
    "agent-forwarding": "permit-agent-forwarding",
    "x11-forwarding": "permit-X11-forwarding",
    "user-rc": "permit-user-rc",
}


@dataclass(frozen=True, slots=True)
class SshGrant:
    """The parsed scopes of one lease, ready to become certificate fields."""

    principals: tuple[str, ...]
    sources: tuple[str, ...] = ()
    command: str | None = None  # a name from the engine's ``commands`` table
    permits: tuple[str, ...] = ()  # extension names (``permit-pty``...)


def parse_scopes(scopes: Sequence[str], commands: Collection[str]) -> SshGrant:
    """Parse a lease's scopes; ``commands`` are the command names the config defines. Raises
    ``ScopeError`` naming the first scope that is malformed, unknown or not canonical."""
    principals: list[str] = []
    sources: list[str] = []
    permits: list[str] = []
    command: str | None = None
    for scope in scopes:
        kind, value = _split(scope)
        if kind == "principal":
            if not PRINCIPAL.fullmatch(value):
                raise ScopeError(f"scope {scope!r}: a principal is 1-64 letters, digits, '_', '.', '-'")
            principals.append(value)
        elif kind == "source":
            sources.append(_network(scope, value))
        elif kind == "command":
            if not COMMAND_NAME.fullmatch(value) or value not in commands:
                known = ", ".join(sorted(commands)) or "none configured"
                raise ScopeError(f"scope {scope!r}: unknown command name (known: {known})")
            if command is not None:
                raise ScopeError(f"scope {scope!r}: a certificate forces at most one command")
            command = value
        elif kind == "permit":
            if value not in PERMITS:
                raise ScopeError(f"scope {scope!r}: unknown permit (known: {', '.join(PERMITS)})")
            permits.append(PERMITS[value])
        else:
            raise ScopeError(
                f"scope {scope!r}: expected ssh:principal:NAME, ssh:source:CIDR, ssh:command:NAME or "
                "ssh:permit:FEATURE"
            )
    if not principals:
        raise ScopeError("an ssh lease needs at least one ssh:principal:NAME scope")
    return SshGrant(
        principals=tuple(dict.fromkeys(principals)),
        sources=tuple(dict.fromkeys(sources)),
        command=command,
        permits=tuple(dict.fromkeys(permits)),
    )


def _split(scope: str) -> tuple[str, str]:
    if not scope.startswith(PREFIX):
        raise ScopeError(f"scope {scope!r} does not start with {PREFIX!r}")
    kind, separator, value = scope[len(PREFIX):].partition(":")
    if not separator or not value:
        raise ScopeError(f"scope {scope!r} is not of the form ssh:KIND:VALUE")
    return kind, value


def _network(scope: str, value: str) -> str:
    try:
        network = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ScopeError(f"scope {scope!r}: not a network address with its prefix length") from None
    canonical = network.with_prefixlen
    if canonical != value:
        raise ScopeError(f"scope {scope!r} is not in canonical form; write it as 'ssh:source:{canonical}'")
    return canonical
