"""The console's routes: sign-in and sign-out, the incident list (and its rows, for live refresh),
one incident's page, and the forms that act on it. Server-rendered; every response goes through
``guard.secure``; every POST through ``guard.read_form`` and a CSRF check.

Only principals of ``CONSOLE_ROLES`` may sign in. A refused sign-in is audited (``deny``, principal
``console``, the client address as resource; never the key) and counted by the throttle. A session
ends when its principal's key is revoked from the config, at its next request.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment
from jitsec.broker.console import guard
from jitsec.broker.console.guard import FormRefused
from jitsec.broker.console.sessions import Session, SessionBook
from jitsec.broker.console.static import ShippedFiles
from jitsec.broker.console.throttle import SignInThrottle
from jitsec.broker.console.views import BadFilter, ListQuery, detail, read_query, row
from jitsec.broker.errors import BrokerError
from jitsec.broker.incidents.desk import IncidentDesk
from jitsec.broker.model import AuditEvent, AuditKind, Role
from jitsec.broker.service import BrokerService

from jitsec.kernel.credential_format import CredentialKind
from jitsec.kernel.redaction import printable

log = logging.getLogger("jitsec.broker.console")

CONSOLE_ROLES = frozenset({Role.ANALYST, Role.ADMIN})
PAGE_SIZE = 50
REFRESH_MILLISECONDS = 5000
SIGN_IN_COOKIE_SECONDS = 900
MAX_KEY_CHARS = 256

T = TypeVar("T")
router = APIRouter(prefix="/console", include_in_schema=False)


@dataclass(slots=True)
class Console:
    """Everything the console keeps between requests (one per app)."""

    sessions: SessionBook
    throttle: SignInThrottle
    templates: Environment
    static: ShippedFiles


class Refusal(Exception):
    """Raised by a route's checks to answer with ``response`` instead (a redirect to the sign-in page,
    a refused form, a bad filter); ``mount_console`` installs the handler that sends it."""

    def __init__(self, response: Response) -> None:
        super().__init__("console request refused")
        self.response = response


async def send_refusal(request: Request, refusal: Exception) -> Response:
    if not isinstance(refusal, Refusal):
        raise refusal
    return refusal.response


@dataclass(frozen=True, slots=True)
class SignedIn:
    session_id: str
    session: Session


def _console(request: Request) -> Console:
    return request.app.state.console


def _service(request: Request) -> BrokerService:
    return request.app.state.service


def _desk(request: Request) -> IncidentDesk:
    return _service(request).incidents


async def _blocking(function: Callable[..., T], *args: Any) -> T:
    return await run_in_threadpool(function, *args)


def _page(request: Request, template: str, http_status: int = 200, **context: Any) -> HTMLResponse:
    values = {"session": None, "message": "", "message_kind": None, **context}
    html = _console(request).templates.get_template(template).render(**values)
    return guard.secure(HTMLResponse(html, status_code=http_status))


def _problem(request: Request, status: int, heading: str, detail_text: str,
             signed_in: SignedIn | None = None) -> HTMLResponse:
    return _page(request, "error.html", status, status=status, heading=heading, detail=detail_text,
                 session=signed_in.session if signed_in else None)


def _redirect(location: str) -> Response:
    return guard.secure(RedirectResponse(location, status_code=303))


def _required(request: Request) -> SignedIn:
    """The live session, or a redirect to the sign-in page."""
    signed_in = _signed_in(request)
    if signed_in is None:
        raise Refusal(_redirect("/console/sign-in"))
    return signed_in


def _signed_in(request: Request, touch: bool = True) -> SignedIn | None:
    """The request's live session, if its principal still holds a console role in the config."""
    session_id = request.cookies.get(guard.SESSION_COOKIE)
    console = _console(request)
    session = console.sessions.find(session_id, touch)
    if session is None or session_id is None:
        return None
    keys = request.app.state.principal_keys
    if not keys.holds(session.key_sha256, CONSOLE_ROLES):
        console.sessions.end(session_id)
        log.info("console session of %s ended: its key is no longer a console principal",
                 printable(session.principal))
        return None
    return SignedIn(session_id, session)


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


# sign-in and sign-out ------------------------------------------------------------------------------


@router.get("")
async def home(request: Request) -> Response:
    return _redirect("/console/incidents" if _signed_in(request) else "/console/sign-in")


@router.get("/sign-in")
async def sign_in_form(request: Request) -> Response:
    if _signed_in(request):
        return _redirect("/console/incidents")
    return _sign_in_page(request, 200)


def _sign_in_page(request: Request, status: int, message: str = "") -> Response:
    token = secrets.token_urlsafe(32)
    response = _page(request, "sign_in.html", status, sign_in_token=token, message=message,
                     message_kind="error" if message else None)
    guard.set_cookie(request, response, guard.SIGN_IN_COOKIE, token, SIGN_IN_COOKIE_SECONDS)
    return response


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    console, address = _console(request), _client(request)
    try:
        form = await guard.read_form(request)
    except FormRefused as refused:
        return _sign_in_page(request, refused.status, refused.message)
    if not guard.tokens_match(request.cookies.get(guard.SIGN_IN_COOKIE), form.get("csrf")):
        return _sign_in_page(request, 403, "The sign-in form expired or came from elsewhere: try again.")
    wait = console.throttle.retry_after(address)
    if wait > 0:
        response = _sign_in_page(request, 429, f"Too many failed sign-ins: try again in {int(wait) + 1} s.")
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response
    key = form.get("key", "").strip()
    principal = None
    if key.startswith(CredentialKind.PRINCIPAL_KEY.prefix) and len(key) <= MAX_KEY_CHARS:
        principal = request.app.state.principal_keys.find(key)
    if principal is None or principal.role not in CONSOLE_ROLES:
        console.throttle.failed(address)
        reason = ("unknown key" if principal is None
                  else f"principal {principal.name} has role {principal.role.value}, not a console role")
        await _blocking(_service(request).audit, AuditEvent(
            kind=AuditKind.DENY, at=_service(request).clock(), principal="console",
            resource=printable(address)[:64], detail=f"console_sign_in: {reason}"))
        log.info("console sign-in refused from %s: %s", printable(address), reason)
        return _sign_in_page(request, 401, "This key cannot sign in to the console.")
    session_id, _ = console.sessions.open(principal.name, principal.role.value, principal.key_sha256)
    log.info("console sign-in: %s (%s) from %s", principal.name, principal.role.value, printable(address))
    response = _redirect("/console/incidents")
    guard.set_cookie(request, response, guard.SESSION_COOKIE, session_id,
                     int(console.sessions.policy.max_seconds))
    guard.clear_cookie(request, response, guard.SIGN_IN_COOKIE)
    return response


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    signed_in = _required(request)
    await _checked_form(request, signed_in)
    _console(request).sessions.end(signed_in.session_id)
    response = _redirect("/console/sign-in")
    guard.clear_cookie(request, response, guard.SESSION_COOKIE)
    return response


async def _checked_form(request: Request, signed_in: SignedIn) -> dict[str, str]:
    """The form's fields; refused when malformed or without the session's CSRF token."""
    try:
        form = await guard.read_form(request)
    except FormRefused as refused:
        raise Refusal(_problem(request, refused.status, "Form refused", refused.message, signed_in)) from None
    if not guard.tokens_match(signed_in.session.csrf, form.get("csrf")):
        log.info("console form without a valid CSRF token refused (%s)",
                 printable(signed_in.session.principal))
        raise Refusal(_problem(request, 403, "Form refused", "This form has no valid CSRF token: "
                               "reload the page and try again.", signed_in))
    return form


# incidents -----------------------------------------------------------------------------------------


@router.get("/incidents")
async def incidents(request: Request) -> Response:
    signed_in = _required(request)
    query, rows, next_cursor = await _listed(request, signed_in)
    return _page(request, "incidents.html", session=signed_in.session, rows=rows, query=query,
                 next_query=query.query_string(next_cursor) if next_cursor else None,
                 refresh=None if query.cursor else f"/console/incidents/rows?{query.query_string()}",
                 refresh_every=REFRESH_MILLISECONDS)


@router.get("/incidents/rows")
async def incident_rows(request: Request) -> Response:
    """The list's rows alone, for the live refresh (401 when the session is over: the script stops).
    Polling does not keep the session alive."""
    signed_in = _signed_in(request, touch=False)
    if signed_in is None:
        return guard.secure(Response("signed out", status_code=401, media_type="text/plain"))
    return _page(request, "rows.html", rows=(await _listed(request, signed_in))[1])


async def _listed(request: Request, signed_in: SignedIn
                  ) -> tuple[ListQuery, list[dict[str, str]], str | None]:
    try:
        query = read_query(request.query_params)
        page = await _blocking(_desk(request).list, query.filters, query.cursor, PAGE_SIZE)
    except BadFilter as error:
        raise Refusal(_problem(request, 400, "Bad filter", str(error), signed_in)) from None
    except BrokerError as error:
        raise Refusal(_problem(request, error.status, "Cannot list incidents", error.reason,
                               signed_in)) from None
    return query, [row(incident) for incident in page.items], page.next_cursor


@router.get("/incidents/{incident_id}")
async def incident(request: Request, incident_id: str) -> Response:
    signed_in = _required(request)
    found = await _blocking(_desk(request).get, incident_id)
    if found is None:
        return _problem(request, 404, "No such incident", "There is no incident with this id.", signed_in)
    done = request.query_params.get("done", "")
    return _page(request, "incident.html", session=signed_in.session, incident=detail(found),
                 message=_DONE.get(done, ""))


_DONE = {"status": "Status changed.", "assigned": "Assignee changed.", "noted": "Note added."}


@router.post("/incidents/{incident_id}/{verb}")
async def act(request: Request, incident_id: str, verb: str) -> Response:
    """``act`` (field ``action``: ack, resolve, reopen, false_positive; ``reason``), ``assign``
    (``assignee``) or ``note`` (``text``); then back to the incident's page."""
    signed_in = _required(request)
    form = await _checked_form(request, signed_in)
    desk, by = _desk(request), signed_in.session.principal
    try:
        if verb == "act":
            await _blocking(desk.act, incident_id, form.get("action", ""), by, form.get("reason", ""))
            done = "status"
        elif verb == "assign":
            await _blocking(desk.assign, incident_id, form.get("assignee", ""), by)
            done = "assigned"
        elif verb == "note":
            await _blocking(desk.note, incident_id, form.get("text", ""), by)
            done = "noted"
        else:
            return _problem(request, 404, "No such action", "The console has no such form.", signed_in)
    except BrokerError as error:
        return _problem(request, error.status, "Not done", error.reason, signed_in)
    return _redirect(f"/console/incidents/{quote(incident_id, safe='')}?done={done}")


@router.get("/static/{name}")
async def static_file(request: Request, name: str) -> Response:
    found = _console(request).static.get(name)
    if found is None:
        return guard.secure(Response("not found", status_code=404, media_type="text/plain"))
    body, media_type = found
    return guard.secure(Response(body, media_type=media_type))
