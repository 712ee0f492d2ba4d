"""Runs the API with uvicorn (HTTPS when the config names a certificate); the reaper runs inside.

With ``workers > 1`` uvicorn starts worker processes that each build the broker from the config path
in ``JITSEC_BROKER_CONFIG`` (``app_from_env``); the store's reaper lock keeps one reaper at a time.
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI
from jitsec.broker.api.app import create_app
from jitsec.broker.config import BrokerConfig, ServerSettings, load_config
from jitsec.broker.runtime import build_broker

from jitsec.kernel.addresses import is_loopback

log = logging.getLogger("jitsec.broker.server")
CONFIG_ENV = "JITSEC_BROKER_CONFIG"
GRACEFUL_SHUTDOWN_SECONDS = 5  # then idle keep-alive connections are closed and the reaper stops


def plain_http_warning(settings: ServerSettings) -> str | None:
    """What to say when the API will serve plain HTTP beyond this machine (None when it will not)."""
    if settings.tls_cert or is_loopback(settings.host):
        return None
    return (f"serving plain HTTP on {settings.host}: principal keys, grants and secrets cross the network "
            "in clear text; set [server] tls_cert and tls_key (or keep host on loopback behind a TLS proxy)")


def app_from_env() -> FastAPI:
    """uvicorn factory for worker processes."""
    path = Path(os.environ[CONFIG_ENV])
    return create_app(build_broker(load_config(path)), close_broker=True, config_path=path)


def serve(
    config: BrokerConfig,
    config_path: str,
    *,
    host: str | None = None,
    port: int | None = None,
    workers: int | None = None,
    log_level: str = "info",
) -> None:
    settings = replace(
        config.server,
        host=host or config.server.host,
        port=port or config.server.port,
        workers=workers or config.server.workers,
    )
    tls = {"ssl_certfile": settings.tls_cert, "ssl_keyfile": settings.tls_key} if settings.tls_cert else {}
    warning = plain_http_warning(settings)
    if warning is not None:
        log.warning("%s", warning)
    common: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": log_level,
        "access_log": False,
        "server_header": False,
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_SECONDS,
        **tls,
    }
    if settings.workers > 1:
        os.environ[CONFIG_ENV] = str(config_path)
        uvicorn.run("jitsec.broker.server:app_from_env", factory=True, workers=settings.workers, **common)
        return
    broker = build_broker(config)
    try:
        uvicorn.run(create_app(broker, config_path=Path(config_path)), **common)
    finally:
        broker.close()
