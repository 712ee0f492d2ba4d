from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from jitsec.kernel import credential_format as cf
from jitsec.kernel.redaction import SHOWN_CHARS, preview, scrub, shown


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


@given(st.sampled_from(list(cf.CredentialKind)))
def test_a_minted_credential_is_never_shown(kind: cf.CredentialKind) -> None:
    secret = cf.mint(kind)
    assert secret not in shown(secret) and secret[8:] not in shown(secret)


@given(st.text(max_size=300))
def test_shown_is_printable_and_bounded(text: str) -> None:
    out = shown(text)
    assert out.isprintable() or out == ""
    assert len(out) <= SHOWN_CHARS + 1 or "…(" in out


def test_names_scopes_and_ids_are_shown_as_they_are() -> None:
    for name in ("reports:read", "postgres:app:public.orders:SELECT", "billing-bot",
                 "tsk_e14ad31b5a8f6c605cd8adf4", "lse_0123456789abcdef01234567", "nightly report for March"):
        assert shown(name) == name
