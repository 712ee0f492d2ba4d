"""The ssh: scope grammar: what each scope becomes, what is refused and why."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jitsec.broker.engines.ssh_scope import PERMITS, PRINCIPAL, SshGrant, parse_scopes
from jitsec.broker.errors import ScopeError

COMMANDS = {"backup": "/usr/local/bin/backup --run"}


def test_every_kind_of_scope_becomes_its_certificate_field() -> None:
    grant = parse_scopes(["ssh:principal:deploy", "ssh:principal:ops", "ssh:source:10.0.0.0/8",
                          "ssh:source:::1/128", "ssh:command:backup", "ssh:permit:pty"], COMMANDS)
    assert grant == SshGrant(principals=("deploy", "ops"), sources=("10.0.0.0/8", "::1/128"),
                             command="backup", permits=("permit-pty",))


@pytest.mark.parametrize(("scopes", "message"), [
    (["ssh:source:10.0.0.0/8"], "at least one ssh:principal"),
    (["ssh:principal:"], "ssh:KIND:VALUE"),
    (["ssh:principal:a b"], "a principal is"),
    (["ssh:principal:-leading-dash"], "a principal is"),
    (["ssh:principal:x", "ssh:source:10.0.0.1/8"], "canonical form; write it as 'ssh:source:10.0.0.0/8'"),
    (["ssh:principal:x", "ssh:source:10.0.0.1"], "canonical form; write it as 'ssh:source:10.0.0.1/32'"),
    (["ssh:principal:x", "ssh:source:example.com"], "not a network address"),
    (["ssh:principal:x", "ssh:command:rm"], "unknown command name (known: backup)"),
    (["ssh:principal:x", "ssh:command:backup", "ssh:command:backup"], "at most one command"),
    (["ssh:principal:x", "ssh:permit:root"], "unknown permit"),
    (["ssh:principal:x", "ssh:shell:bash"], "expected ssh:principal:NAME"),
    (["postgres:db:public.t:SELECT"], "does not start with 'ssh:'"),
])
def test_a_refused_scope_says_why(scopes: list[str], message: str) -> None:
    with pytest.raises(ScopeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_scopes(scopes, COMMANDS)


def test_without_configured_commands_no_command_scope_is_accepted() -> None:
    with pytest.raises(ScopeError, match="none configured"):
        parse_scopes(["ssh:principal:x", "ssh:command:backup"], {})


principals = st.from_regex(PRINCIPAL.pattern, fullmatch=True)


def _network(address: ipaddress.IPv4Address | ipaddress.IPv6Address, prefix: int) -> object:
    return ipaddress.ip_network((address, prefix), strict=False)


networks = st.one_of(st.builds(_network, st.ip_addresses(v=4), st.integers(0, 32)),
                     st.builds(_network, st.ip_addresses(v=6), st.integers(0, 128)))


@settings(deadline=None)
@given(st.lists(principals, min_size=1, max_size=5), st.lists(networks, max_size=4),
       st.lists(st.sampled_from(sorted(PERMITS)), max_size=5))
def test_canonical_scopes_parse_to_what_they_name(
    names: list[str], nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network], permits: list[str]
) -> None:
    scopes = [f"ssh:principal:{n}" for n in names] + [f"ssh:source:{n.with_prefixlen}" for n in nets]
    scopes += [f"ssh:permit:{p}" for p in permits]
    grant = parse_scopes(scopes, COMMANDS)
    assert grant.principals == tuple(dict.fromkeys(names))
    assert grant.sources == tuple(dict.fromkeys(n.with_prefixlen for n in nets))
    assert grant.permits == tuple(dict.fromkeys(PERMITS[p] for p in permits))
    assert grant.command is None


@settings(deadline=None)
@given(st.ip_addresses(v=4), st.integers(0, 31))
def test_a_network_with_host_bits_is_refused(address: ipaddress.IPv4Address, prefix: int) -> None:
    network = ipaddress.ip_network((address, prefix), strict=False)
    text = f"ssh:source:{address}/{prefix}"
    if network.network_address == address:
        assert parse_scopes(["ssh:principal:x", text], {}).sources == (network.with_prefixlen,)
    else:
        with pytest.raises(ScopeError, match="canonical form"):
            parse_scopes(["ssh:principal:x", text], {})


@settings(deadline=None)
@given(st.text(max_size=40))
def test_any_text_is_parsed_or_refused_with_a_scope_error(text: str) -> None:
    try:
        grant = parse_scopes([text], COMMANDS)
    except ScopeError:
        return
    assert grant.principals == (text.removeprefix("ssh:principal:"),)
