from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from jitsec.kernel import credential_format as cf
from jitsec.kernel.redaction import preview, scrub


@given(st.text(min_size=8, max_size=300))
def test_a_preview_never_contains_the_secret(secret: str) -> None:
    assert secret not in preview(secret)


def test_a_broker_token_preview_keeps_only_its_public_prefix_and_four_characters() -> None:
    token = cf.mint(cf.CredentialKind.ENGINE_TOKEN)
    shown = preview(token)
    assert shown.startswith("jit_" + token[4:8])
    assert token[8:12] not in shown
    assert "(50 chars)" in shown


def test_scrub_replaces_every_occurrence_of_each_secret_in_hand() -> None:
    first, second = cf.mint(cf.CredentialKind.ENGINE_TOKEN), cf.mint(cf.CredentialKind.TASK_TOKEN)
    message = f"refused {first} then {second} then {first}"
    cleaned = scrub(message, [first, second])
    assert first not in cleaned and second not in cleaned
    assert cleaned.count("…") == 3
