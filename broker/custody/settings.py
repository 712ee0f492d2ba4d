"""``[keys]``: which custody holds the broker's master keys, read from the config (no key material).

    [keys]
    custody = "pkcs11"                          # or "file" (the default: [broker] audit_key)
    module = "/usr/lib/softhsm/libsofthsm2.so"  # the token's PKCS#11 library
    token = "jitsec"                            # the token's label
    # audit_key_label = "jitsec-audit"          # labels of the keys in the token (these defaults)
    # anchor_key_label = "jitsec-anchor"
    # kek_label = "jitsec-kek"

The PIN is never in the file: it comes from ``JITSEC_PKCS11_PIN``.
"""

from __future__ import annotations

from dataclasses import dataclass

from jitsec.broker.custody.base import FILE, HSM

PIN_ENV = "JITSEC_PKCS11_PIN"
AUDIT_LABEL = "jitsec-audit"
ANCHOR_LABEL = "jitsec-anchor"
KEK_LABEL = "jitsec-kek"
CUSTODY_NAMES = {"file": FILE, "pkcs11": HSM}


@dataclass(frozen=True, slots=True)
class TokenSettings:
    """Where the token is and what its keys are called."""

    module: str
    token: str
    audit_key_label: str = AUDIT_LABEL
    anchor_key_label: str = ANCHOR_LABEL
    kek_label: str = KEK_LABEL


@dataclass(frozen=True, slots=True)
class KeySettings:
    """``custody`` is ``file`` or ``hsm``; ``token`` is set exactly when it is ``hsm``."""

    custody: str = FILE
    token: TokenSettings | None = None
