"""Opens the custody a config names: the one call the broker, ``jitsec audit`` and conformance make."""

from __future__ import annotations

from collections.abc import Mapping

from jitsec.broker.custody.base import HSM, Custody, CustodyError, file_custody
from jitsec.broker.custody.settings import KeySettings


def open_custody(keys: KeySettings, audit_key: bytes, environ: Mapping[str, str] | None = None) -> Custody:
    """File custody from ``audit_key``; token custody logs in with the PIN from the environment."""
    if keys.custody != HSM:
        return file_custody(audit_key)
    if keys.token is None:
        raise CustodyError("[keys] custody = \"pkcs11\" needs module and token")
    from jitsec.broker.custody.pkcs11_token import pin_from_env, token_custody  # noqa: PLC0415 - optional

    return token_custody(keys.token, pin_from_env(dict(environ) if environ is not None else None))
