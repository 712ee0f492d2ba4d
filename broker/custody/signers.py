"""``Signer`` implementations (``broker.signing``) for ES256: EC P-256 keys, signatures as raw
``r || s`` (32 + 32 bytes, what JOSE wants), the public half as a JWK whose ``kid`` is its RFC 7638
thumbprint (stable for the key's life, the same whichever custody holds it).

- ``FileSigner``: the private key in a PEM file of mode 0600 (refused when group or others may read it).
- ``TokenSigner``: the private key in a PKCS#11 token, created non-extractable; the digest is computed
  here and the token signs it (``CKM_ECDSA``, which returns ``r || s``).

A ``TokenSigner`` may also hold an Ed25519 pair (``EdDSA``, for the SSH CA): the token signs the whole
message (``CKM_EDDSA``, pure Ed25519), its JWK is an RFC 8037 ``OKP`` key.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jitsec.broker.custody.base import Custody, CustodyError
from jitsec.broker.custody.pkcs11_token import TokenSession
from jitsec.broker.signing import TOKEN_PREFIX, Signer

ES256 = "ES256"
EDDSA = "EdDSA"
ED25519_BYTES = 32
ED25519_OID = bytes.fromhex("06032b6570")  # id-Ed25519 (RFC 8410), the curve's EC_PARAMS
COORDINATE_BYTES = 32
P256_CURVE = "secp256r1"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def ec_public_jwk(x: bytes, y: bytes) -> dict[str, str]:
    """The JWK of a P-256 public point, with ``kid`` = RFC 7638 thumbprint, ``alg`` and ``use``."""
    members = {"crv": "P-256", "kty": "EC", "x": _b64url(x), "y": _b64url(y)}
    thumbprint = hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode()).digest()
    return {**members, "kid": _b64url(thumbprint), "alg": ES256, "use": "sig"}


@dataclass(slots=True)
class FileSigner:
    """An ES256 key in a PEM file. ``sign`` is thread-safe (``cryptography`` keys are)."""

    path: Path
    _key: Any = field(repr=False)
    key_id: str = ""
    algorithm: str = ES256

    @classmethod
    def load(cls, path: str | Path) -> FileSigner:
        from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415 - only for file keys
        from cryptography.hazmat.primitives.serialization import load_pem_private_key  # noqa: PLC0415

        path = Path(path)
        try:
            if stat.S_IMODE(path.stat().st_mode) & 0o077:
                raise CustodyError(f"signing key {path} is readable by others: chmod 600 {path}")
            key = load_pem_private_key(path.read_bytes(), password=None)
        except OSError as error:
            raise CustodyError(f"signing key {path}: {error.strerror or error}") from None
        except ValueError:
            raise CustodyError(f"signing key {path} is not a PEM private key") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
            raise CustodyError(f"signing key {path} is not an EC P-256 key (ES256)")
        signer = cls(path=path, _key=key)
        signer.key_id = signer.public_jwk()["kid"]
        return signer

    @classmethod
    def create(cls, path: str | Path) -> FileSigner:
        """A new P-256 key written to ``path`` (created 0600, never replacing an existing file)."""
        from cryptography.hazmat.primitives import serialization  # noqa: PLC0415
        from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415

        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise CustodyError(f"signing key {path} exists already (never replaced)") from None
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(pem)
        return cls.load(path)

    def sign(self, message: bytes) -> bytes:
        from cryptography.hazmat.primitives import hashes  # noqa: PLC0415
        from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature  # noqa: PLC0415

        r, s = decode_dss_signature(self._key.sign(message, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(COORDINATE_BYTES, "big") + s.to_bytes(COORDINATE_BYTES, "big")

    def public_jwk(self) -> dict[str, str]:
        numbers = self._key.public_key().public_numbers()
        return ec_public_jwk(numbers.x.to_bytes(COORDINATE_BYTES, "big"),
                             numbers.y.to_bytes(COORDINATE_BYTES, "big"))


@dataclass(slots=True)
class TokenSigner:
    """A key pair in a PKCS#11 token, found by label; the private key never leaves it. ``ES256``: a
    P-256 pair, the digest computed here and signed in the token (``CKM_ECDSA``); ``EdDSA``: an
    Ed25519 pair (``CKK_EC_EDWARDS``) signing the whole message in the token (``CKM_EDDSA``)."""

    session: TokenSession
    label: str
    _private: Any = field(repr=False)
    _jwk: dict[str, str] = field(repr=False)
    key_id: str = ""
    algorithm: str = ES256

    @classmethod
    def load(cls, session: TokenSession, label: str, algorithm: str = ES256) -> TokenSigner:
        pkcs11 = session.pkcs11
        where = f"{session.where}: key {label!r}"
        if _checked(algorithm, label) == ES256:
            private, point = _find_pair(session, label, pkcs11.KeyType.EC, "EC")
            jwk = ec_public_jwk(*_uncompressed_point(point, where))
        else:
            private, point = _find_pair(session, label, pkcs11.KeyType.EC_EDWARDS, "Ed25519")
            jwk = _ed25519_jwk(point, where)
        return cls(session=session, label=label, _private=private, _jwk=jwk, key_id=jwk["kid"],
                   algorithm=algorithm)

    @classmethod
    def create(cls, session: TokenSession, label: str, algorithm: str = ES256) -> TokenSigner:
        """A new pair generated in the token (private half sensitive, non-extractable)."""
        pkcs11 = session.pkcs11
        if _checked(algorithm, label) == ES256:
            from pkcs11.util.ec import encode_named_curve_parameters  # noqa: PLC0415 - the optional extra

            _generate_pair(session, label, pkcs11.KeyType.EC, encode_named_curve_parameters(P256_CURVE))
        else:
            _generate_pair(session, label, pkcs11.KeyType.EC_EDWARDS, ED25519_OID,
                           mechanism=pkcs11.Mechanism.EC_EDWARDS_KEY_PAIR_GEN)
        return cls.load(session, label, algorithm)

    def sign(self, message: bytes) -> bytes:
        mechanisms = self.session.pkcs11.Mechanism
        if self.algorithm == ES256:
            data, mechanism = hashlib.sha256(message).digest(), mechanisms.ECDSA
        else:
            data, mechanism = message, mechanisms.EDDSA
        return bytes(self.session.run(lambda _: self._private.sign(data, mechanism=mechanism)))

    def public_jwk(self) -> dict[str, str]:
        return dict(self._jwk)

    @staticmethod
    def exists(session: TokenSession, label: str) -> bool:
        """Whether the token holds a private key with this label."""
        pkcs11 = session.pkcs11
        wanted = {pkcs11.Attribute.LABEL: label, pkcs11.Attribute.CLASS: pkcs11.ObjectClass.PRIVATE_KEY}
        return bool(session.run(lambda raw: list(raw.get_objects(wanted))))

    @staticmethod
    def destroy(session: TokenSession, label: str) -> None:
        """Delete every object with this label (the pair's two halves); none left is not an error."""
        pkcs11 = session.pkcs11

        def delete(raw: Any) -> None:
            for found in list(raw.get_objects({pkcs11.Attribute.LABEL: label})):
                found.destroy()

        session.run(delete)


def _checked(algorithm: str, label: str) -> str:
    if algorithm not in (ES256, EDDSA):
        raise CustodyError(f"signing key {label!r}: no {algorithm} keys in a token (ES256 or EdDSA)")
    return algorithm


def _ed25519_jwk(point: bytes, where: str) -> dict[str, str]:
    """RFC 8037 ``OKP`` JWK, ``kid`` its RFC 7638 thumbprint, from ``CKA_EC_POINT`` (DER or bare)."""
    if len(point) == ED25519_BYTES + 2 and point[:2] == b"\x04\x20":
        point = point[2:]
    if len(point) != ED25519_BYTES:
        raise CustodyError(f"{where} is not an Ed25519 public key")
    members = {"crv": "Ed25519", "kty": "OKP", "x": _b64url(point)}
    thumbprint = hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode())
    return {**members, "kid": _b64url(thumbprint.digest()), "alg": EDDSA, "use": "sig"}


def _find_pair(session: TokenSession, label: str, key_type: Any, what: str) -> tuple[Any, bytes]:
    """The private key of the pair labelled ``label`` and its public half's ``CKA_EC_POINT``."""
    pkcs11 = session.pkcs11

    def find(raw: Any) -> tuple[Any, bytes]:
        try:
            private = raw.get_key(object_class=pkcs11.ObjectClass.PRIVATE_KEY, key_type=key_type, label=label)
            public = raw.get_key(object_class=pkcs11.ObjectClass.PUBLIC_KEY, key_type=key_type, label=label)
        except pkcs11.exceptions.NoSuchKey:
            raise CustodyError(f"{session.where}: no {what} key pair labelled {label!r}") from None
        return private, bytes(public[pkcs11.Attribute.EC_POINT])

    found: tuple[Any, bytes] = session.run(find)
    return found


def _generate_pair(session: TokenSession, label: str, key_type: Any, curve: bytes,
                   mechanism: Any = None) -> None:
    """Generate a pair on ``curve`` (its ``CKA_EC_PARAMS``) stored in the token under ``label``, the
    private half sensitive and non-extractable; refused when the label is taken (never replaced)."""
    pkcs11 = session.pkcs11

    def generate(raw: Any) -> None:
        if list(raw.get_objects({pkcs11.Attribute.LABEL: label})):
            raise CustodyError(f"{session.where}: objects labelled {label!r} exist already (never replaced)")
        parameters = raw.create_domain_parameters(key_type, {pkcs11.Attribute.EC_PARAMS: curve}, local=True)
        parameters.generate_keypair(
            mechanism=mechanism, store=True, label=label,
            private_template={pkcs11.Attribute.SENSITIVE: True, pkcs11.Attribute.EXTRACTABLE: False})

    session.run(generate)


def _uncompressed_point(ec_point: bytes, where: str) -> tuple[bytes, bytes]:
    """X and Y of ``CKA_EC_POINT``: a DER OCTET STRING holding ``04 || X || Y`` (or the bare point)."""
    size = 1 + 2 * COORDINATE_BYTES
    point = ec_point[2:] if len(ec_point) == size + 2 and ec_point[0] == 0x04 else ec_point
    if len(point) != size or point[0] != 0x04:
        raise CustodyError(f"{where} is not an uncompressed P-256 point")
    return point[1:1 + COORDINATE_BYTES], point[1 + COORDINATE_BYTES:]


def open_signer(custody: Custody, reference: str, base_dir: Path | None = None) -> Signer:
    """The signer an engine option names: ``pkcs11:LABEL`` (a key pair in the custody's token) or a PEM
    file path (relative to ``base_dir``, the config's folder)."""
    if reference.startswith(TOKEN_PREFIX):
        if not isinstance(custody.session, TokenSession):
            raise CustodyError(f"signing key {reference!r} is in a token, but [keys] names none")
        return TokenSigner.load(custody.session, reference.removeprefix(TOKEN_PREFIX))
    path = Path(reference)
    return FileSigner.load(path if base_dir is None or path.is_absolute() else base_dir / path)


@dataclass(frozen=True, slots=True)
class CustodyKeys:
    """``SigningKeys`` (``broker.signing``) over a key custody: ``pkcs11:LABEL`` in its token, any
    other reference a PEM file relative to ``base_dir``. Without a token (``custody`` ``None`` or a
    file custody) a token reference is a ``CustodyError`` saying what to configure."""

    custody: Custody | None = None
    base_dir: Path | None = None

    def exists(self, reference: str) -> bool:
        if reference.startswith(TOKEN_PREFIX):
            return TokenSigner.exists(self._session(reference), reference.removeprefix(TOKEN_PREFIX))
        return self._path(reference).exists()

    def open(self, reference: str, algorithm: str = ES256) -> Signer:
        if reference.startswith(TOKEN_PREFIX):
            return TokenSigner.load(self._session(reference), reference.removeprefix(TOKEN_PREFIX), algorithm)
        return FileSigner.load(self._file(reference, algorithm))

    def create(self, reference: str, algorithm: str = ES256) -> Signer:
        if reference.startswith(TOKEN_PREFIX):
            label = reference.removeprefix(TOKEN_PREFIX)
            return TokenSigner.create(self._session(reference), label, algorithm)
        return FileSigner.create(self._file(reference, algorithm))

    def destroy(self, reference: str) -> None:
        if reference.startswith(TOKEN_PREFIX):
            TokenSigner.destroy(self._session(reference), reference.removeprefix(TOKEN_PREFIX))
        else:
            self._path(reference).unlink(missing_ok=True)

    def _session(self, reference: str) -> TokenSession:
        session = self.custody.session if self.custody is not None else None
        if not isinstance(session, TokenSession):
            raise CustodyError(f"signing key {reference!r} is in a PKCS#11 token, but the broker has none "
                               "([keys] custody = \"pkcs11\", module and token)")
        return session

    def _file(self, reference: str, algorithm: str) -> Path:
        if algorithm != ES256:
            raise CustodyError(f"signing key {reference!r}: {algorithm} key files are the engine's own")
        return self._path(reference)

    def _path(self, reference: str) -> Path:
        path = Path(reference)
        return path if self.base_dir is None or path.is_absolute() else self.base_dir / path
