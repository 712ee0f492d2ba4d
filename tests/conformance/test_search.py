"""The secret search finds an issued secret however it was written down (plain, base64 at any
alignment, hex, percent-encoded), and the scanner discovers broker credentials inside encoded runs."""

from __future__ import annotations

import base64
import secrets

from hypothesis import given, settings
from hypothesis import strategies as st
from jitsec.scanner.engine import Scanner
from jitsec.scanner.fingerprint import Fingerprinter
from jitsec.scanner.ruleset import load_ruleset

from jitsec.conformance.search import SecretSearch, encoded_forms
from jitsec.kernel.credential_format import CredentialKind, mint

SCANNER = Scanner(load_ruleset(), Fingerprinter(secrets.token_bytes(32)), engine="python")
noise = st.binary(max_size=40).filter(lambda b: b"jit" not in b)


@settings(max_examples=60, deadline=None)
@given(before=noise, after=noise, kind=st.sampled_from(list(CredentialKind)))
def test_known_secret_found_in_every_encoding(before: bytes, after: bytes, kind: CredentialKind) -> None:
    secret = mint(kind)
    search = SecretSearch(SCANNER, [secret])
    raw = before + secret.encode() + after
    for encoding, data in (
        ("plain", raw),
        ("base64", base64.b64encode(raw)),
        ("base64", base64.urlsafe_b64encode(raw)),
        ("hex", raw.hex().encode()),
        ("url", "".join(f"%{b:02X}" for b in raw).encode()),
    ):
        hits = search.known_hits(data, "blob")
        assert any(f"({encoding})" in hit.shown for hit in hits), encoding
        assert all(secret not in hit.shown for hit in hits)


def test_nothing_found_where_nothing_is() -> None:
    search = SecretSearch(SCANNER, [mint(CredentialKind.ENGINE_TOKEN)])
    assert search.known_hits(b"an ordinary log line without credentials\n" * 100, "log") == []


def test_scanner_discovers_credentials_in_base64_and_hex_runs() -> None:
    token = mint(CredentialKind.ENGINE_TOKEN)
    line = f"Authorization: Bearer {token}".encode()
    search = SecretSearch(SCANNER)
    for blob, encoding in ((line, "plain"), (base64.b64encode(line), "base64"), (line.hex().encode(), "hex")):
        found = search.candidates(b"x=" + blob + b"\n", "blob")
        assert [c.value for c in found if c.encoding == encoding] == [token], encoding
        assert token not in repr(found)


def test_encoded_forms_cover_three_alignments() -> None:
    forms = encoded_forms("jit_example")
    assert len(forms["base64"]) == 3 and forms["plain"] == (b"jit_example",)  # no + or /: alphabets agree
