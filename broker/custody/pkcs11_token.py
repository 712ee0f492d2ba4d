"""Master keys in a PKCS#11 token (an HSM; SoftHSM2 in tests). The keys are created in the token as
sensitive and non-extractable: HMAC-SHA256 and AES-GCM run inside it, and no call here can read them.

One logged-in session per token per process, shared under a lock: a PKCS#11 login belongs to the
whole application (a second login is refused, a logout ends every session), so ``open_session``
counts its users and logs out when the last one closes; a later opener must present the same PIN.
Every failure is a ``CustodyError`` naming the module and the token, never the PIN.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jitsec.broker.custody.base import HSM, Custody, CustodyError
from jitsec.broker.custody.settings import PIN_ENV, TokenSettings

SEAL_PREFIX = "pkcs11-aes-gcm:"
NONCE_BYTES = 12


def _pkcs11() -> Any:
    try:
        import pkcs11  # noqa: PLC0415 - an optional extra, loaded only when a token is configured
    except ImportError:
        raise CustodyError("[keys] custody = \"pkcs11\" needs `pip install 'jitsec[hsm]'`") from None
    return pkcs11


def pin_from_env(environ: dict[str, str] | None = None) -> str:
    pin = (environ if environ is not None else os.environ).get(PIN_ENV, "")
    if not pin:
        raise CustodyError(f"the PKCS#11 token's PIN is not set: export {PIN_ENV} "
                           "(never in argv or the config)")
    return pin


_OPEN: dict[tuple[str, str], tuple[TokenSession, bytes]] = {}
_OPEN_LOCK = threading.Lock()


def open_session(settings: TokenSettings, pin: str) -> TokenSession:
    """The process's logged-in session on this token (opened and logged in by its first user)."""
    where = (settings.module, settings.token)
    digest = hashlib.sha256(pin.encode("utf-8")).digest()
    with _OPEN_LOCK:
        held = _OPEN.get(where)
        if held is not None and held[0].users > 0:
            session, known = held
            if not hmac.compare_digest(known, digest):
                raise CustodyError(f"{session.where}: wrong PIN (from {PIN_ENV})")
            session.users += 1
            return session
        session = TokenSession(settings, pin)
        _OPEN[where] = (session, digest)
        return session


class TokenSession:
    """A logged-in read-write session on the token, used by one thread at a time; ``close`` logs out
    when its last user closes it. Open it with ``open_session``."""

    def __init__(self, settings: TokenSettings, pin: str) -> None:
        pkcs11 = _pkcs11()
        self.settings = settings
        where = f"PKCS#11 token {settings.token!r} (module {settings.module})"
        self.where = where
        try:
            lib = pkcs11.lib(settings.module)
        except RuntimeError as error:  # python-pkcs11 raises a RuntimeError subclass for a bad module
            raise CustodyError(f"{where}: the module cannot be loaded ({type(error).__name__})") from None
        try:
            token = lib.get_token(token_label=settings.token)
        except pkcs11.exceptions.NoSuchToken:
            raise CustodyError(f"{where}: no such token (is it initialised and the module's config "
                               "pointing at it, e.g. SOFTHSM2_CONF?)") from None
        except pkcs11.exceptions.MultipleTokensReturned:
            raise CustodyError(f"{where}: several tokens carry this label") from None
        try:
            self._session = token.open(user_pin=pin, rw=True)
        except pkcs11.exceptions.PinIncorrect:
            raise CustodyError(f"{where}: wrong PIN (from {PIN_ENV})") from None
        except pkcs11.exceptions.PinLocked:
            raise CustodyError(f"{where}: the PIN is locked") from None
        except pkcs11.exceptions.PKCS11Error as error:
            raise CustodyError(f"{where}: cannot log in ({type(error).__name__})") from None
        self._lock = threading.Lock()
        self.pkcs11 = pkcs11
        self.users = 1

    def run(self, work: Callable[[Any], Any]) -> Any:
        """``work(session)`` under the session's lock; token errors become ``CustodyError``."""
        with self._lock:
            try:
                return work(self._session)
            except self.pkcs11.exceptions.PKCS11Error as error:
                raise CustodyError(f"{self.where}: {type(error).__name__}") from None

    def secret_key(self, label: str) -> Any:
        """The secret key with this label (``CustodyError`` when it is missing)."""
        pkcs11 = self.pkcs11

        def find(session: Any) -> Any:
            try:
                return session.get_key(object_class=pkcs11.ObjectClass.SECRET_KEY, label=label)
            except pkcs11.exceptions.NoSuchKey:
                raise CustodyError(f"{self.where}: no key labelled {label!r} (create the keys with "
                                   "`jitsec broker init --pkcs11-module ...`)") from None

        return self.run(find)

    def close(self) -> None:
        with _OPEN_LOCK, self._lock:
            self.users -= 1
            if self.users == 0:
                self._session.close()


@dataclass(slots=True)
class TokenHmac:
    """An HMAC-SHA256 key computed in the token."""

    session: TokenSession
    key: Any

    def mac(self, data: bytes) -> bytes:
        mechanism = self.session.pkcs11.Mechanism.SHA256_HMAC
        return bytes(self.session.run(lambda _: self.key.sign(data, mechanism=mechanism)))


@dataclass(slots=True)
class TokenSealer:
    """AES-256-GCM with a key-encryption key that stays in the token; the blob is
    ``pkcs11-aes-gcm:`` + base64(nonce || ciphertext || tag), the context its associated data."""

    session: TokenSession
    key: Any

    def seal(self, secret: str, context: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        plain = secret.encode("utf-8")
        sealed = self.session.run(lambda _: self.key.encrypt(plain, **self._gcm(nonce, context)))
        return SEAL_PREFIX + base64.b64encode(nonce + bytes(sealed)).decode("ascii")

    def unseal(self, blob: str, context: str) -> str:
        if not blob.startswith(SEAL_PREFIX):
            raise CustodyError(f"a sealed value for {context} must start with {SEAL_PREFIX!r}")
        try:
            raw = base64.b64decode(blob.removeprefix(SEAL_PREFIX), validate=True)
        except ValueError:
            raise CustodyError(f"the sealed value for {context} is not base64") from None
        nonce, body = raw[:NONCE_BYTES], raw[NONCE_BYTES:]
        try:
            opened = self.session.run(lambda _: self.key.decrypt(body, **self._gcm(nonce, context)))
        except CustodyError:
            raise CustodyError(f"the sealed value for {context} does not open with the token's "
                               "key-encryption key (changed, moved from another setting, or sealed by "
                               "another token)") from None
        return bytes(opened).decode("utf-8")

    def _gcm(self, nonce: bytes, context: str) -> dict[str, Any]:
        pkcs11 = self.session.pkcs11
        return {"mechanism": pkcs11.Mechanism.AES_GCM,
                "mechanism_param": pkcs11.mechanisms.GCMParams(nonce, context.encode("utf-8"), 128)}


def token_custody(settings: TokenSettings, pin: str) -> Custody:
    """Log in and find the three keys; ``CustodyError`` (exit 2 in the CLI) when anything is missing."""
    session = open_session(settings, pin)
    try:
        audit = TokenHmac(session, session.secret_key(settings.audit_key_label))
        anchor = TokenHmac(session, session.secret_key(settings.anchor_key_label))
        sealer = TokenSealer(session, session.secret_key(settings.kek_label))
    except CustodyError:
        session.close()
        raise
    return Custody(kind=HSM, audit=audit, anchor=anchor, sealer=sealer, closer=session.close, session=session)


def create_token_keys(settings: TokenSettings, pin: str) -> Custody:
    """Generate the audit, anchor and key-encryption keys in the token (refusing labels already used,
    so an existing broker's keys are never replaced); returns them logged in, for init to seal with."""
    session = open_session(settings, pin)
    pkcs11 = session.pkcs11
    attribute, key_type, flags = pkcs11.Attribute, pkcs11.KeyType, pkcs11.MechanismFlag
    locked = {attribute.SENSITIVE: True, attribute.EXTRACTABLE: False, attribute.TOKEN: True,
              attribute.PRIVATE: True}
    wanted = ((settings.audit_key_label, key_type.GENERIC_SECRET, flags.SIGN | flags.VERIFY),
              (settings.anchor_key_label, key_type.GENERIC_SECRET, flags.SIGN | flags.VERIFY),
              (settings.kek_label, key_type.AES, flags.ENCRYPT | flags.DECRYPT))

    def create(session_: Any) -> Any:
        secret = pkcs11.ObjectClass.SECRET_KEY
        taken = [label for label, _, _ in wanted
                 if list(session_.get_objects({attribute.LABEL: label, attribute.CLASS: secret}))]
        if taken:
            raise CustodyError(f"{session.where}: keys labelled {', '.join(taken)} exist already; "
                               "choose other labels or another token (existing keys are never replaced)")
        return [session_.generate_key(kind, 256, label=label, store=True, capabilities=caps, template=locked)
                for label, kind, caps in wanted]

    try:
        audit, anchor, kek = session.run(create)
    except CustodyError:
        session.close()
        raise
    return Custody(kind=HSM, audit=TokenHmac(session, audit), anchor=TokenHmac(session, anchor),
                   sealer=TokenSealer(session, kek), closer=session.close, session=session)
