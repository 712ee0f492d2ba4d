"""The X.509 CA's public material: its CRL (DER) and its certificate (PEM), unauthenticated on purpose.

TLS servers and clients fetch them without a broker key: the CRL distribution point of every client
certificate names ``/v1/x509/crl``. With several x509 engines configured, ``?engine=NAME`` picks one.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from fastapi import APIRouter, Request, Response
from jitsec.broker.errors import NotFound

router = APIRouter(tags=["x509"])
CRL_MEDIA_TYPE = "application/pkix-crl"
PEM_MEDIA_TYPE = "application/x-pem-file"


@runtime_checkable
class CertificateAuthorityEngine(Protocol):
    """What these routes need of an engine (the x509 engine has it; no import of its module here)."""

    @property
    def crl_der(self) -> bytes: ...

    @property
    def ca_certificate_pem(self) -> str: ...


def _authority(request: Request, engine: str | None) -> CertificateAuthorityEngine:
    engines = request.app.state.broker.engines
    found = {name: e for name, e in engines.items() if isinstance(e, CertificateAuthorityEngine)}
    if engine is not None:
        if engine in found:
            return found[engine]
    elif len(found) == 1:
        return next(iter(found.values()))
    elif "x509" in found:
        return found["x509"]
    choices = ", ".join(sorted(found)) or "none configured"
    raise NotFound(f"name an x509 engine with ?engine= ({choices})", code="unknown_engine")


@router.get("/v1/x509/crl", response_class=Response)
def crl(request: Request, engine: str | None = None) -> Response:
    return Response(_authority(request, engine).crl_der, media_type=CRL_MEDIA_TYPE,
                    headers={"Cache-Control": "no-cache"})


@router.get("/v1/x509/ca.pem", response_class=Response)
def ca_certificate(request: Request, engine: str | None = None) -> Response:
    return Response(_authority(request, engine).ca_certificate_pem, media_type=PEM_MEDIA_TYPE)
