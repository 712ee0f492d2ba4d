"""SCRAM-SHA-256 verifiers (RFC 5802 / RFC 7677), computed client-side so the plaintext password never
reaches the server: ``CREATE ROLE … PASSWORD 'SCRAM-SHA-256$…'`` stores the verifier as given.

libpq offers the same (``PQencryptPasswordConn``), but it costs ~3× more CPU than ``hashlib``'s
OpenSSL PBKDF2 and holds the GIL, which caps issuance. Passwords are ASCII letters, digits and ``_``
(the broker's own format), which SASLprep leaves unchanged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

# PostgreSQL's own default is 4096. Iterations slow down offline guessing of weak passwords; the broker's
# carry ~238 random bits, beyond any guessing, while every iteration costs CPU three times per
# credential: here, in the server's CREATE ROLE (it checks the verifier against the empty password),
# and at each login. 256 keeps all three well under a millisecond.
DEFAULT_ITERATIONS = 256
SALT_BYTES = 16


def scram_sha256_verifier(password: str, *, iterations: int = DEFAULT_ITERATIONS,
                          salt: bytes | None = None) -> str:
    """``SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`` for ``password``."""
    if not password.isascii() or not password.isprintable():
        raise ValueError("only printable ASCII passwords are supported (no SASLprep needed)")
    if iterations < 1:
        raise ValueError("iterations must be positive")
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    salted = hashlib.pbkdf2_hmac("sha256", password.encode("ascii"), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode("ascii")

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"
