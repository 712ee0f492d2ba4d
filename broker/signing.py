"""The seam between what the broker signs (JWT access tokens, certificates, audit anchors) and where its
signing keys live: a key file on disk today, a PKCS#11 token (HSM) when one is configured. Engines ask
for a ``Signer`` by name and never see private key bytes, so moving a key into an HSM changes the
config, not the engine."""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class Signer(Protocol):
    """One asymmetric signing key. ``algorithm`` is its JOSE name (``ES256``, ``RS256``, ``EdDSA``);
    ``key_id`` is stable for the key's life and names it in a JWKS; ``sign`` returns the signature in
    the encoding JOSE uses for that algorithm (raw ``r || s`` for ECDSA)."""

    key_id: str
    algorithm: str

    def sign(self, message: bytes) -> bytes: ...

    def public_jwk(self) -> dict[str, str]:
        """The public half as a JWK (with ``kid``, ``alg`` and ``use``), ready for a JWKS."""
        ...
