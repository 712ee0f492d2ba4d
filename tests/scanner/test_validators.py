from __future__ import annotations

import zlib
from collections.abc import Callable

from hypothesis import given
from hypothesis import strategies as st
from jitsec.scanner.validators import VALIDATORS

from jitsec.kernel.credential_format import ALPHABET, CredentialKind, encode_base62, mint

base62 = st.text(alphabet=ALPHABET, min_size=30, max_size=30)


def github_token(prefix: str, random_part: str) -> str:
    return f"{prefix}_{random_part}{encode_base62(zlib.crc32(random_part.encode()), 6)}"


@given(kind=st.sampled_from(list(CredentialKind)))
def test_broker_validator_accepts_every_minted_credential(kind: CredentialKind) -> None:
    assert VALIDATORS["broker-crc32"](mint(kind))


@given(
    kind=st.sampled_from(list(CredentialKind)), position=st.integers(0, 45), char=st.sampled_from(ALPHABET)
)
def test_broker_validator_rejects_a_changed_character(kind: CredentialKind, position: int, char: str) -> None:
    token = mint(kind)
    body_start = len(kind.prefix)
    index = body_start + position
    changed = token[:index] + char + token[index + 1 :]
    assert VALIDATORS["broker-crc32"](changed) == (changed == token)


@given(random_part=base62, prefix=st.sampled_from(["ghp", "gho", "ghu", "ghs", "ghr"]))
def test_github_checksum_round_trip(
    random_part: str, prefix: str, last_character_changed: Callable[[str], str]
) -> None:
    token = github_token(prefix, random_part)
    assert VALIDATORS["github-crc32"](token)
    broken = last_character_changed(token)
    assert not VALIDATORS["github-crc32"](broken)
    assert not VALIDATORS["github-crc32"]("ghx_" + token[4:])
    assert not VALIDATORS["npm-crc32"](token)


@given(random_part=base62)
def test_npm_checksum_round_trip(random_part: str) -> None:
    assert VALIDATORS["npm-crc32"](github_token("npm", random_part))


def test_malformed_shapes_are_rejected() -> None:
    for value in ["", "ghp_", "ghp_short", "ghp_" + "!" * 36, "jit_" + "a" * 10]:
        assert not VALIDATORS["github-crc32"](value)
        assert not VALIDATORS["broker-crc32"](value)
