from __future__ import annotations

import base64
import json
from urllib.parse import quote, unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jitsec.scanner.decoders import decode_variants, marker_lines
from jitsec.scanner.engine import Scanner

from jitsec.kernel.records import StreamOrigin


def test_marker_lines_finds_only_lines_with_markers() -> None:
    data = b"plain\nq=a%2Fb\nno %zz here\n{\"k\":\"a\\nb\"}\n\\\"quoted\\\"\nAuthorization: Basic abc\n"
    lines = [data[s:e] for s, e in marker_lines(data)]
    assert lines == [b"q=a%2Fb", b'{"k":"a\\nb"}', b"Authorization: Basic abc"]


def test_json_escapes_decode_with_exact_position_mapping() -> None:
    line = '{"msg":"x","pem":"A\\nB\\u0043"}'
    (variant,) = decode_variants(line)
    assert variant.kind == "json"
    assert variant.text == '{"msg":"x","pem":"A\nBC"}'
    assert variant.original_position(variant.text.index("B")) == line.index("B")
    assert variant.original_position(variant.text.index("C")) == line.index("\\u0043")
    assert variant.original_position(len(variant.text) - 1) == len(line) - 1


def test_url_runs_decode_one_by_one() -> None:
    line = "GET /a?user=bob&pw=p%40ss%2Fw0rd&x=1 HTTP/1.1"
    (variant,) = decode_variants(line)
    assert variant.kind == "url"
    assert "pw=p@ss/w0rd&x=1" in variant.text
    assert variant.original_position(variant.text.index("&x=1")) == line.index("&x=1")


def test_basic_credentials_are_decoded_in_place() -> None:
    encoded = base64.b64encode(b"bob:s3cr3t-Pa55").decode()
    (variant,) = decode_variants(f"Authorization: Basic {encoded}")
    assert variant.text == "Authorization: Basic bob:s3cr3t-Pa55"
    assert decode_variants("Authorization: Basic notbase64!!") == []
    assert decode_variants("Authorization: Basic " + base64.b64encode(b"no colon").decode()) == []


def test_a_pem_in_a_json_log_line_is_one_finding_with_the_real_body(scanner: Scanner) -> None:
    body = ("MIIEowIBAAKCAQEA2a2rwplBQLF29amygykEMmYz0+Kcj3bKBp29P2rFj7QNkLx4\n"
            "wmAXgIHOeaR6Cq3T1y0kTmKsH0VwZ1Q6pR8hNjXL5FvJ3l9yT0gG2yqPwq7S8aYt")
    pem = f"-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----"
    line = "first\n" + json.dumps({"level": "error", "key": pem})
    (finding,) = scanner.scan_bytes(line.encode(), StreamOrigin())
    assert finding.rule_id == "sample-private-key"
    assert finding.line == 2
    assert finding.column == line.split("\n")[1].index("-----BEGIN") + 1
    assert finding.fingerprint == scanner.fingerprinter.fingerprint(body)


@pytest.mark.parametrize("encoded", ["Zq8%23vR2%21mK9pL4w", "Zq8%23vR2!mK9pL4w"])
def test_url_encoded_password_is_reported_decoded(scanner: Scanner, encoded: str) -> None:
    (finding,) = scanner.scan_bytes(f"https://h.test/cb?password={encoded}&next=/".encode(), StreamOrigin())
    assert finding.fingerprint == scanner.fingerprinter.fingerprint("Zq8#vR2!mK9pL4w")
    assert finding.column == len("https://h.test/cb?password=") + 1


def test_encoded_placeholders_stay_negatives(scanner: Scanner) -> None:
    assert scanner.scan_bytes(b"https://h.test/?password=%24%7BDB_PASSWORD%7D", StreamOrigin()) == []


def test_lone_surrogates_from_json_escapes_do_not_crash(scanner: Scanner) -> None:
    line = b'{"m":"x\\n password=Zq8\\ud800vR2mK9pL4w"}'
    (finding,) = scanner.scan_bytes(line, StreamOrigin())
    assert finding.rule_id == "sample-password-assignment"


plain = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126, blacklist_characters="%\\\"'<> "),
                max_size=12)
encoded = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=8).map(
    lambda value: quote(value, safe=""))


@given(parts=st.lists(st.tuples(plain, encoded), min_size=1, max_size=5), tail=plain)
def test_url_decoding_maps_every_unchanged_character_back(parts: list[tuple[str, str]], tail: str) -> None:
    line = "".join(p + e for p, e in parts) + tail
    variants = decode_variants(line)
    if not any(variant.kind == "url" for variant in variants):
        assert "%" not in line or all(e == unquote(e) for _, e in parts)
        return
    variant = next(v for v in variants if v.kind == "url")
    assert unquote(line) == variant.text
    inside = {i for start, end, _, _ in variant.segments for i in range(start, end)}
    for position, char in enumerate(variant.text):
        if position not in inside:
            assert line[variant.original_position(position)] == char
