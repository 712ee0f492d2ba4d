"""The web console: analysts sign in with their key and work the fleet's incidents in a browser.

Served by the broker at ``/console`` (``mount_console`` adds it to the API's app). Pages are rendered
on the server from the templates in ``templates/`` (Jinja2, autoescaped) with one small script in
``static/`` for live refresh; there is no front-end build. See docs/console.md.
"""

from __future__ import annotations

from fastapi import FastAPI
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from jitsec.broker.console.pages import Console, Refusal, router, send_refusal
from jitsec.broker.console.sessions import SessionBook, SessionPolicy
from jitsec.broker.console.static import ShippedFiles
from jitsec.broker.console.throttle import SignInThrottle, ThrottlePolicy


def templates() -> Environment:
    """Autoescaping on for every template (their names end in .html), undefined names an error."""
    return Environment(loader=PackageLoader("jitsec.broker.console", "templates"),
                       autoescape=select_autoescape(default=True, default_for_string=True),
                       undefined=StrictUndefined, auto_reload=False)


def mount_console(app: FastAPI, sessions: SessionPolicy | None = None,
                  throttle: ThrottlePolicy | None = None) -> None:
    app.state.console = Console(sessions=SessionBook(sessions), throttle=SignInThrottle(throttle),
                                templates=templates(), static=ShippedFiles())
    app.include_router(router)
    app.add_exception_handler(Refusal, send_refusal)
