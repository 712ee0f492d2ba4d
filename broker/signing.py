"""The seam between what the broker signs (JWT access tokens, certificates, audit anchors) and where its
signing keys live: a key file on disk today, a PKCS#11 token (HSM) when one is configured. Engines ask
for a ``Signer`` by name and never see private key bytes, so moving a key into an HSM changes the
config, not the engine."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from jitsec.broker.errors import ConfigError


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


TOKEN_PREFIX = "pkcs11:"


@runtime_checkable
class SigningKeys(Protocol):
    """Where an engine's signing keys are made and found, given by a reference from its options:
    ``pkcs11:LABEL`` (an EC P-256 pair in the broker's PKCS#11 token, non-extractable) or a PEM file
    path (relative to the config's folder). The broker builds one from its key custody and hands it to
    engines in ``EngineSettings.signing_keys``. Thread-safe; failures are ``ConfigError``s naming the
    key, never holding key material."""

    def exists(self, reference: str) -> bool: ...

    def open(self, reference: str, algorithm: str = "ES256") -> Signer:
        """The signer of an existing key of this JOSE algorithm (``ES256``; ``EdDSA`` in a token only);
        ``ConfigError`` when it is absent."""
        ...

    def create(self, reference: str, algorithm: str = "ES256") -> Signer:
        """A new key; refused when the reference names one already (keys are never replaced)."""
        ...

    def destroy(self, reference: str) -> None:
        """Delete the key (private and public halves); nothing happens when it is already gone."""
        ...


def open_or_create(keys: SigningKeys, reference: str, algorithm: str = "ES256") -> Signer:
    """The key a reference names, made on first use (as a broker makes its file keys on first start).
    When another process makes it at the same moment, its key is used."""
    if keys.exists(reference):
        return keys.open(reference, algorithm)
    try:
        return keys.create(reference, algorithm)
    except ConfigError:
        if keys.exists(reference):
            return keys.open(reference, algorithm)
        raise
