"""The broker-issued credential format: minted credentials parse, and corruption is caught."""

from __future__ import annotations

import random
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jitsec.kernel import credential_format as cf

KINDS = list(cf.CredentialKind)


@given(st.sampled_from(KINDS), st.randoms(use_true_random=False))
def test_minted_credentials_parse_back_to_their_kind(kind: cf.CredentialKind, rnd: random.Random) -> None:
    token = cf.mint(kind, randbelow=rnd.randrange)
    parsed = cf.parse(token)
    assert parsed is not None
    assert parsed.kind is kind
    assert len(parsed.body) == cf.BODY_LENGTH
    assert len(parsed.check) == cf.CHECK_LENGTH
    assert token == parsed.prefix + parsed.body + parsed.check


@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_base62_round_trips_every_crc(value: int) -> None:
    encoded = cf.encode_base62(value, cf.CHECK_LENGTH)
    assert len(encoded) == cf.CHECK_LENGTH
    assert int("".join(str(cf.ALPHABET.index(c)).rjust(2, "0") for c in encoded)) >= 0
    decoded = 0
    for char in encoded:
        decoded = decoded * 62 + cf.ALPHABET.index(char)
    assert decoded == value


def test_checksum_is_crc32_of_the_ascii_body_most_significant_first() -> None:
    body = "0123456789ABCDEFGHIJabcdefghijKLMNOPQRST"
    crc = zlib.crc32(body.encode("ascii"))
    digits = []
    while crc:
        crc, rest = divmod(crc, 62)
        digits.append(cf.ALPHABET[rest])
    assert cf.checksum(body) == "".join(reversed(digits)).rjust(6, "0")


@given(
    st.sampled_from(KINDS),
    st.randoms(use_true_random=False),
    st.integers(min_value=0),
    st.sampled_from(cf.ALPHABET),
)
def test_any_single_character_change_breaks_the_checksum(
    kind: cf.CredentialKind, rnd: random.Random, position: int, replacement: str
) -> None:
    token = cf.mint(kind, randbelow=rnd.randrange)
    start = len(kind.prefix)
    index = start + position % (len(token) - start)
    if token[index] == replacement:
        replacement = cf.ALPHABET[(cf.ALPHABET.index(replacement) + 1) % 62]
    corrupted = token[:index] + replacement + token[index + 1 :]
    assert cf.parse(corrupted) is None


@pytest.mark.parametrize(
    "candidate",
    [
        "",
        "jit_",
        "jit_" + "A" * 45,  # one short
        "jit_" + "A" * 47,  # one long
        "JIT_" + "A" * 46,  # prefixes are lowercase
        "jit_" + "A" * 40 + "!!!!!!",
        "xyz_" + "A" * 46,
    ],
)
def test_malformed_strings_are_not_credentials(candidate: str) -> None:
    assert not cf.is_valid(candidate)


def test_mint_refuses_a_prefix_of_another_shape() -> None:
    with pytest.raises(ValueError, match="prefix"):
        cf.mint("token_")


def test_two_mints_differ() -> None:
    assert cf.mint(cf.CredentialKind.ENGINE_TOKEN) != cf.mint(cf.CredentialKind.ENGINE_TOKEN)


def test_sha256_fingerprint_is_the_same_for_str_and_bytes() -> None:
    token = cf.mint(cf.CredentialKind.TASK_TOKEN)
    assert cf.sha256_fingerprint(token) == cf.sha256_fingerprint(token.encode())
    assert len(cf.sha256_fingerprint(token)) == 64
