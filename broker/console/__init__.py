"""The web console: analysts sign in with their key and work the fleet's incidents in a browser.

Served by the broker at ``/console`` (``mount_console`` adds it to the API's app). Pages are rendered
on the server from the templates in ``templates/`` (Jinja2, autoescaped) with one small script in
``static/`` for live refresh; there is no front-end build. See docs/console.md.
"""

from __future__ import annotations

from fastapi import FastAPI
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from jitsec.broker.config import ConsoleSettings
from jitsec.broker.console.pages import Console, Refusal, router, send_refusal
from jitsec.broker.console.sessions import SessionBook, SessionPolicy
from jitsec.broker.console.static import ShippedFiles
from jitsec.broker.console.throttle import SignInThrottle, ThrottlePolicy


def templates() -> Environment:
    """Autoescaping on for every template (their names end in .html), undefined names an error."""
    return Environment(loader=PackageLoader("jitsec.broker.console", "templates"),
                       autoescape=select_autoescape(default=True, default_for_string=True),
                       undefined=StrictUndefined, auto_reload=False)


def mount_console(app: FastAPI, settings: ConsoleSettings | None = None) -> None:
    """Serve the console from ``app`` under /console, with the ``[console]`` settings."""
    settings = settings or ConsoleSettings()
    sessions = SessionPolicy(idle_seconds=settings.idle_minutes * 60, max_seconds=settings.max_hours * 3600)
    throttle = ThrottlePolicy(max_failures=settings.sign_in_failures,
                              window_seconds=settings.sign_in_window_seconds)
    app.state.console = Console(sessions=SessionBook(sessions), throttle=SignInThrottle(throttle),
                                templates=templates(), static=ShippedFiles())
    app.include_router(router)
    app.add_exception_handler(Refusal, send_refusal)
