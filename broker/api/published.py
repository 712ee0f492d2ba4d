"""Documents engines publish without authentication (``Publishing``): a JWKS, OAuth metadata, a
revocation list. Public by nature (keys' public halves, lists of revoked serials): no principal key."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from fastapi import APIRouter, Response
from jitsec.broker.engines.base import Engine, PublicDocument, Publishing
from jitsec.broker.errors import ConfigError


def published_router(engines: Mapping[str, Engine]) -> APIRouter:
    """One GET route per published document; two engines naming the same path is a ``ConfigError``."""
    router = APIRouter(tags=["published"])
    owners: dict[str, str] = {}
    for name, engine in sorted(engines.items()):
        if not isinstance(engine, Publishing):
            continue
        for document in engine.public_documents():
            if not document.path.startswith("/") or document.path.startswith("/v1/"):
                raise ConfigError(f"engines.{name}: cannot publish at {document.path!r} (an absolute path "
                                  "outside /v1/ is needed)")
            if document.path in owners:
                raise ConfigError(f"engines.{owners[document.path]} and engines.{name} both publish "
                                  f"{document.path}; configure one of them only")
            owners[document.path] = name
            router.add_api_route(document.path, _endpoint(document), methods=["GET"], response_class=Response,
                                 summary=f"published by engine {name}")
    return router


def _endpoint(document: PublicDocument) -> Callable[[], Coroutine[Any, Any, Response]]:
    headers = {"Cache-Control": f"public, max-age={document.max_age_seconds}"}

    async def published() -> Response:
        return Response(document.render(), media_type=document.media_type, headers=headers)

    return published
