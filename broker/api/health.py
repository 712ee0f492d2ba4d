"""Liveness and metrics: unauthenticated on purpose (no secrets, no names); bind or proxy accordingly."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

router = APIRouter(tags=["operations"])


@router.get("/healthz")
def healthz(request: Request) -> dict[str, str]:
    request.app.state.service.store.next_deadline()  # the store answers, or this raises (500)
    # where the master keys live ("pkcs11": a PKCS#11 token; "file": the config); says nothing about them
    return {"status": "ok", "key_custody": request.app.state.broker.custody.kind}


@router.get("/metrics", response_class=Response)
def metrics(request: Request) -> Response:
    return Response(request.app.state.service.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
