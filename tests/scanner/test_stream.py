"""Chunking never changes what is found: a secret straddling chunks is found exactly once."""

from __future__ import annotations

import base64
import itertools
import json
import zlib
from urllib.parse import quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jitsec.scanner.engine import Scanner
from jitsec.scanner.stream import LONG_LINE_OVERLAP, MAX_CARRY

from jitsec.kernel.credential_format import CredentialKind, encode_base62, mint
from jitsec.kernel.records import Chunk, FileOrigin

ORIGIN = FileOrigin("stream.log")
PEM = ("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA2a2rwplBQLF29amygykEMmYz0+Kcj3bKBp29P2rFj7QNkLx4\n"
       "wmAXgIHOeaR6Cq3T1y0kTmKsH0VwZ1Q6pR8hNjXL5FvJ3l9yT0gG2yqPwq7S8aYt\n-----END RSA PRIVATE KEY-----")


def github(random_part: str) -> str:
    return f"ghp_{random_part}{encode_base62(zlib.crc32(random_part.encode()), 6)}"


def planted() -> st.SearchStrategy[str]:
    """Lines holding one secret each, raw or encoded as logs really carry them."""
    alnum = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", min_size=16, max_size=16)
    password = st.text(alphabet="abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789#!@%", min_size=10,
                       max_size=24)
    return st.one_of(
        alnum.map(lambda s: f"aws_access_key_id=AKIA{s}"),
        st.sampled_from(list(CredentialKind)).map(lambda k: f'{{"token":"{mint(k)}"}}'),
        st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=30, max_size=30).map(
            lambda s: f"Authorization: Bearer {github(s)}"),
        password.map(lambda p: f"password={p}"),
        password.map(lambda p: f"GET /login?user=bob&password={quote(p, safe='')} HTTP/1.1"),
        password.map(lambda p: "Authorization: Basic "
                     + base64.b64encode(f"bob:password={p}".encode()).decode()),
        st.just(PEM),
        st.just(json.dumps({"key": PEM})),
    )


noise = st.sampled_from([
    '{"level":"info","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","msg":"ok"}',
    '10.0.0.1 - - "GET /search?q=a%20b HTTP/1.1" 200 512',
    "  at com.example.Handler.run(Handler.java:42) "
    "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "password_policy=strict token_ttl=3600",
    "",
])


@st.composite
def documents(draw: st.DrawFn) -> bytes:
    lines = draw(st.lists(st.one_of(noise, planted()), min_size=1, max_size=25))
    return ("\n".join(lines) + draw(st.sampled_from(["", "\n"]))).encode()


def stream_scan(scanner: Scanner, data: bytes, cuts: list[int]) -> list[tuple]:
    stream = scanner.stream(ORIGIN)
    findings = []
    edges = sorted({0, *[c % (len(data) + 1) for c in cuts], len(data)})
    for start, end in itertools.pairwise(edges):
        findings += stream.feed(Chunk(data[start:end], ORIGIN, offset=start))
    findings += stream.finish()
    return [(f.rule_id, f.line, f.column, f.offset, f.fingerprint) for f in findings]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=documents(), cuts=st.lists(st.integers(0, 10_000), max_size=12))
def test_chunking_does_not_change_findings(scanner: Scanner, data: bytes, cuts: list[int]) -> None:
    whole = stream_scan(scanner, data, [])
    assert stream_scan(scanner, data, cuts) == whole
    assert len(set(whole)) == len(whole)


def test_every_planted_kind_is_found(scanner: Scanner) -> None:
    lines = [
        "aws_access_key_id=AKIA2OGYBAH6STMMNXNN",
        f'{{"token":"{mint(CredentialKind.ENGINE_TOKEN)}"}}',
        "GET /login?password=Zq8%23vR2%21mK9pL4w HTTP/1.1",
        "Authorization: Basic " + base64.b64encode(b"bob:password=Zq8#vR2!mK9pL4w").decode(),
        json.dumps({"key": PEM}),
        PEM,
    ]
    found = stream_scan(scanner, "\n".join(lines).encode(), [])
    assert [(rule, line) for rule, line, *_ in found] == [
        ("sample-aws-access-key-id", 1), ("sample-broker-token", 2), ("sample-password-assignment", 3),
        ("sample-password-assignment", 4), ("sample-private-key", 5), ("sample-private-key", 6),
    ]
    password = scanner.fingerprinter.fingerprint("Zq8#vR2!mK9pL4w")
    assert found[2][4] == found[3][4] == password  # decoded, not the encoded form


def test_a_secret_at_a_long_line_piece_boundary_is_found_once(hs_scanner: Scanner) -> None:
    secret = "AKIA2OGYBAH6STMMNXNN"
    filler = b"x " * (MAX_CARRY // 2)
    cut = MAX_CARRY + 100  # the first piece ends inside the secret...
    data = filler[: cut - 10 - LONG_LINE_OVERLAP] + b" " + secret.encode() + b" " + filler
    data = data[:cut] + b" " + secret.encode() + b" " + data[cut:]  # ...and a second copy sits across it
    stream = hs_scanner.stream(ORIGIN)
    findings = []
    for start in range(0, len(data), 65536):
        findings += stream.feed(Chunk(data[start:start + 65536], ORIGIN, offset=start))
    findings += stream.finish()
    expected = sorted(i for i in range(len(data)) if data.startswith(secret.encode(), i))
    assert sorted(f.offset for f in findings) == expected
    assert all(f.line == 1 for f in findings)
    assert sorted(f.column for f in findings) == [offset + 1 for offset in expected]  # not within a piece


def test_a_secret_far_into_a_long_line_after_a_short_one_has_its_true_column(hs_scanner: Scanner) -> None:
    secret = "AKIA2OGYBAH6STMMNXNN"
    data = b"service started\n" + b"x " * (3 * MAX_CARRY // 2) + f"key={secret}\n".encode()
    stream = hs_scanner.stream(ORIGIN)
    findings = []
    for start in range(0, len(data), 65536):
        findings += stream.feed(Chunk(data[start:start + 65536], ORIGIN, offset=start))
    findings += stream.finish()
    [finding] = findings
    assert (finding.line, finding.offset) == (2, data.index(secret.encode()))
    assert finding.column == data.index(secret.encode()) - len(b"service started\n") + 1


def test_scanned_until_only_moves_forward(hs_scanner: Scanner) -> None:
    stream = hs_scanner.stream(ORIGIN)
    stream.feed(Chunk(b"partial line without end", ORIGIN))
    assert stream.scanned_until == 0
    stream.feed(Chunk(b" done\nnext", ORIGIN, offset=24))
    assert stream.scanned_until == 30
    stream.finish()
    assert stream.scanned_until == 34
