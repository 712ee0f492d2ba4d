"""The FastAPI application: routers, error mapping, request-size limit, and the reaper's lifetime.

Routers are listed explicitly in ``ROUTERS``; ``OPTIONAL_ROUTERS`` are included when their module
exists (``broker.api.leaks``, written by the leak response: it must expose ``router``, an APIRouter,
and use ``broker.api.auth.require``/``service_of`` for its dependencies).
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from jitsec.broker.api import agents, health, introspect, leases, secrets, tasks
from jitsec.broker.api.auth import PrincipalKeys
from jitsec.broker.api.published import published_router
from jitsec.broker.api.schemas import ERROR_RESPONSES
from jitsec.broker.console import mount_console
from jitsec.broker.errors import BrokerError, Unauthenticated
from jitsec.broker.runtime import Broker

log = logging.getLogger("jitsec.broker.api")

ROUTERS = (tasks.router, secrets.router, leases.router, introspect.router, agents.router, health.router)
OPTIONAL_ROUTERS = ("jitsec.broker.api.leaks", "jitsec.broker.api.x509", "jitsec.broker.api.ssh",
                    "jitsec.broker.api.incidents")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def create_app(broker: Broker, *, run_reaper: bool = True, close_broker: bool = False,
               config_path: Path | None = None) -> FastAPI:
    """The API over ``broker``. With ``run_reaper`` the reaper thread lives as long as the app serves;
    with ``close_broker`` the app closes the broker at shutdown (when it built it, e.g. in a worker);
    with ``config_path`` the principals are read again from it when it changes."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if run_reaper and broker.config.reaper.enabled:
            broker.reaper.start()
        try:
            yield
        finally:
            broker.reaper.stop()
            if close_broker:
                broker.close()

    app = FastAPI(
        title="jitsec broker",
        version="1",
        lifespan=lifespan,
        description="Just-in-time, per-task, short-lived secrets for AI agents.",
    )
    app.state.service = broker.service
    app.state.broker = broker
    app.state.principal_keys = PrincipalKeys(broker.config.principals, source=config_path)
    for router in ROUTERS:
        app.include_router(router)
    app.include_router(published_router(broker.engines))  # JWKS, OAuth metadata, revocation lists
    for module_name in OPTIONAL_ROUTERS:  # documented errors are the same everywhere
        if importlib.util.find_spec(module_name) is not None:
            app.include_router(importlib.import_module(module_name).router, responses=ERROR_RESPONSES)
    if broker.config.console.enabled:  # /console: the analysts' web pages (docs/console.md)
        mount_console(app, broker.config.console)
    _install_error_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=broker.config.limits.max_request_bytes)
    return app


def error_response(status: int, code: str, detail: str) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": code, "detail": detail}, status_code=status, headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(BrokerError)
    async def broker_error(request: Request, error: BrokerError) -> JSONResponse:
        if isinstance(error, Unauthenticated):
            log.info("401 %s %s: %s", request.method, _route_of(request), error.code)
        return error_response(error.status, error.code, error.reason)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        # Never echo the input: a malformed request may carry a secret (e.g. introspect's token).
        problems = []
        for item in error.errors()[:10]:
            where = ".".join(str(part) for part in item.get("loc", ()))
            problems.append(f"{where}: {item.get('msg', 'invalid')}")
        return error_response(422, "bad_request", "; ".join(problems) or "invalid request")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        log.error("internal error on %s %s: %s", request.method, _route_of(request), type(error).__name__)
        return error_response(500, "internal", "internal error (see the broker's log)")


class BodyLimit:
    """Refuses request bodies above ``max_bytes`` with 413, by header and by counting what arrives."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and (not value.isdigit() or int(value) > self.max_bytes):
                await self._refuse(scope, receive, send)
                return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            body.extend(message.get("body", b""))
            if len(body) > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            more = message.get("more_body", False)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(413, "too_large", f"request body above {self.max_bytes} bytes")
        await response(scope, receive, send)


def _route_of(request: Request) -> str:
    """The matched route's template (``/v1/tasks/{task_id}``), never the raw path: an unauthenticated
    caller chooses the path, and may put a secret or terminal escapes in it."""
    route = request.scope.get("route")
    template = getattr(route, "path", None)
    return template if isinstance(template, str) else "(no route)"
