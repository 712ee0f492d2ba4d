"""What every console response carries and every console form must prove.

Headers: a Content-Security-Policy that allows scripts, styles and fetches from this origin only (no
inline script, no framing, forms posted only here), ``X-Frame-Options: DENY``, ``Cache-Control:
no-store`` (a page of incidents must not stay in a shared cache or the back-button cache), referrers
to this origin only (with none at all Chromium sends ``Origin: null``, which the check below refuses),
no MIME sniffing.

Forms are ``application/x-www-form-urlencoded`` and parsed here (no multipart). A state-changing form
must carry the session's CSRF token; a POST whose ``Origin`` names another origin is refused even
with one. Before sign-in the sign-in form is protected the same way by a random token held in a
short-lived cookie (double submit), so another site cannot sign a browser into an attacker's session.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import TypeVar
from urllib.parse import parse_qsl, urlsplit

from fastapi import Request
from fastapi.responses import Response

R = TypeVar("R", bound=Response)

SESSION_COOKIE = "jitsec_console"
SIGN_IN_COOKIE = "jitsec_console_sign_in"
COOKIE_PATH = "/console"
MAX_FORM_BYTES = 16_384
MAX_FIELD_CHARS = 4_000

CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "connect-src 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
))

SECURITY_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Opener-Policy": "same-origin",
}


class FormRefused(Exception):
    """A form that is malformed, too large, from another origin or without a valid token."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def secure(response: R) -> R:
    response.headers.update(SECURITY_HEADERS)
    return response


def is_https(request: Request) -> bool:
    return request.url.scheme == "https"


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    """HttpOnly, SameSite=Strict, scoped to /console; Secure when the console is served over HTTPS."""
    response.set_cookie(name, value, max_age=max_age, path=COOKIE_PATH, httponly=True, samesite="strict",
                        secure=is_https(request))


def clear_cookie(request: Request, response: Response, name: str) -> None:
    response.delete_cookie(name, path=COOKIE_PATH, httponly=True, samesite="strict", secure=is_https(request))


async def read_form(request: Request) -> dict[str, str]:
    """The posted fields (first value of each), refusing other origins, other encodings and big bodies."""
    origin = request.headers.get("origin")
    if origin is not None and origin != "null" and not _same_origin(request, origin):
        raise FormRefused(403, "this form was posted from another site")
    if origin == "null":
        raise FormRefused(403, "this form was posted from an opaque origin")
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/x-www-form-urlencoded":
        raise FormRefused(415, "forms are posted as application/x-www-form-urlencoded")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise FormRefused(413, "form too large")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False,
                          max_num_fields=32)
    except (UnicodeDecodeError, ValueError):
        raise FormRefused(400, "malformed form") from None
    fields: dict[str, str] = {}
    for name, value in pairs:
        fields.setdefault(name, value[:MAX_FIELD_CHARS])
    return fields


def tokens_match(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(
        str(expected).encode(), str(given).encode())


def _same_origin(request: Request, origin: str) -> bool:
    parts = urlsplit(origin)
    host = request.headers.get("host", "")
    return parts.scheme == request.url.scheme and parts.netloc.lower() == host.lower()
