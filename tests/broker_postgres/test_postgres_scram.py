"""SCRAM-SHA-256 verifiers: PostgreSQL's stored format, deterministic for a given salt, refusing input
that would need SASLprep. (That PostgreSQL accepts them is proven by every login in the engine tests.)"""

from __future__ import annotations

import base64

import pytest
import regex
from hypothesis import given
from hypothesis import strategies as st
from jitsec.broker.engines.postgres_scram import scram_sha256_verifier

from jitsec.kernel.credential_format import CredentialKind, mint

pytestmark = pytest.mark.postgres

_FORMAT = regex.compile(r"SCRAM-SHA-256\$(\d+):([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]{44}):([A-Za-z0-9+/=]{44})")


@given(st.binary(min_size=1, max_size=32), st.integers(1, 64))
def test_verifiers_have_postgres_format_and_depend_on_salt_and_iterations(
    salt: bytes, iterations: int
) -> None:
    password = mint(CredentialKind.POSTGRES_PASSWORD)
    verifier = scram_sha256_verifier(password, iterations=iterations, salt=salt)
    match = _FORMAT.fullmatch(verifier)
    assert match is not None
    assert int(match[1]) == iterations and base64.b64decode(match[2]) == salt
    assert verifier == scram_sha256_verifier(password, iterations=iterations, salt=salt)
    assert verifier != scram_sha256_verifier(password, iterations=iterations + 1, salt=salt)
    assert password not in verifier


def test_fresh_salts_make_every_verifier_different() -> None:
    assert scram_sha256_verifier("jitpg_same") != scram_sha256_verifier("jitpg_same")


@pytest.mark.parametrize("password, iterations", [("pässword", 10), ("tab\there", 10), ("ok", 0)])
def test_unsupported_input_is_refused(password: str, iterations: int) -> None:
    with pytest.raises(ValueError):
        scram_sha256_verifier(password, iterations=iterations)
