"""What SSH servers fetch from the broker: the CA's public key and the KRL of revoked certificates.

Unauthenticated on purpose: both are public (a server trusts the CA key and refuses what the KRL
lists; neither lets anyone log in). ``?engine=NAME`` picks an engine when several of kind ``ssh``
are configured; with one, it is the default. A server can also read the KRL file the engine writes
(``krl_file``) directly; these routes serve hosts that pull it over HTTP.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from jitsec.broker.engines.ssh import SshEngine
from jitsec.broker.errors import NotFound

router = APIRouter(tags=["ssh"])


def _engine(request: Request, engine: str | None) -> SshEngine:
    engines = {name: e for name, e in request.app.state.broker.engines.items() if isinstance(e, SshEngine)}
    if engine is not None:
        found = engines.get(engine)
        if found is None:
            raise NotFound("no ssh engine of that name is configured", code="unknown_engine")
        return found
    if len(engines) != 1:
        detail = "no ssh engine is configured" if not engines else "several ssh engines: pass ?engine=NAME"
        raise NotFound(detail, code="unknown_engine")
    return next(iter(engines.values()))


@router.get("/v1/ssh/ca.pub", response_class=Response)
def ca_public_key(request: Request, engine: str | None = None) -> Response:
    """The CA's public key line, for ``TrustedUserCAKeys``."""
    return Response(_engine(request, engine).ca_public_key + "\n", media_type="text/plain")


@router.get("/v1/ssh/krl", response_class=Response)
def revoked_keys(request: Request, engine: str | None = None) -> Response:
    """The binary OpenSSH KRL of revoked, unexpired certificates, for ``RevokedKeys``."""
    return Response(_engine(request, engine).revoked.krl(), media_type="application/octet-stream",
                    headers={"Cache-Control": "no-store"})
