"""Elasticsearch sink: incidents indexed as Elastic Common Schema (ECS) documents a SOC can search.

One document per incident (``_id`` = incident id), replaced by each newer version: indexing uses
external versioning with the incident's ``version``, so a late retry of an older version can never
overwrite a newer one (Elasticsearch answers 409, which counts as delivered). ``send`` only spools
(``SpooledSink``); the spool's thread indexes and waits for Elasticsearch's answer, retrying while it
is down. A document Elasticsearch refuses for good (400) is set aside in the spool's dead table.

ECS fields written: ``@timestamp`` (last seen), ``message`` (the one-line summary), ``event.kind``
(``alert``), ``event.category`` (``intrusion_detection``), ``event.type`` (``indicator``),
``event.action`` (what the response did), ``event.outcome``, ``event.severity`` (21/47/73/99),
``event.id``, ``event.start``/``event.end`` (first/last seen), ``event.dataset``/``event.module``,
``rule.id``, ``rule.name``, ``rule.description``, ``rule.ruleset``, ``rule.version`` (rules digest),
``observer.*``, ``tags``, and, under the custom ``jitsec`` namespace, the full ``jitsec.incident/1``
record (fingerprint, preview, occurrences, locations, lease, agent, task, scopes, latency).
No secret: the incident holds a redacted preview and a keyed fingerprint only.

Also ``observer.name``/``observer.hostname``/``host.name`` (the scanner and its host), ``event.url``
(the console incident, when a console URL is set) and ``jitsec.remediation``.

Spec for ``--alert``: ``elasticsearch://HOST:PORT/INDEX`` (plain HTTP) or
``elasticsearchs://HOST:PORT/INDEX[?ca=PATH&auth=apikey|basic&username=NAME]`` (HTTPS, the server
certificate checked against ``ca`` or the system's roots). ``auth=apikey`` sends
``Authorization: ApiKey $JITSEC_ES_API_KEY`` (the base64 "encoded" key Elasticsearch returns);
``auth=basic`` sends ``username`` and ``$JITSEC_ES_PASSWORD``. Secrets come from the environment
only. The index is created with a mapping that makes ids keywords and times dates.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from elasticsearch import ApiError, BadRequestError, ConflictError, Elasticsearch, TransportError
from jitsec.connectors.sinks.alert import AlertContext, iso_utc
from jitsec.connectors.sinks.base import SpooledSink
from jitsec.connectors.sinks.serialize import incident_summary
from jitsec.connectors.sinks.spool import Backoff, DeliveryError, PermanentDeliveryError

from jitsec.kernel.records import Incident, ResponseAction, Severity
from jitsec.kernel.schemas import INCIDENT

DEFAULT_INDEX = "jitsec-incidents"
API_KEY_ENV = "JITSEC_ES_API_KEY"
PASSWORD_ENV = "JITSEC_ES_PASSWORD"
_SEVERITY_SCORE = {Severity.LOW: 21, Severity.MEDIUM: 47, Severity.HIGH: 73, Severity.CRITICAL: 99}
_OUTCOME = {ResponseAction.REVOKED: "success", ResponseAction.IRREVOCABLE: "failure"}

MAPPINGS: dict[str, Any] = {
    "properties": {
        "@timestamp": {"type": "date"},
        "message": {"type": "text"},
        "tags": {"type": "keyword"},
        "event": {"properties": {
            "kind": {"type": "keyword"}, "category": {"type": "keyword"}, "type": {"type": "keyword"},
            "action": {"type": "keyword"}, "outcome": {"type": "keyword"}, "severity": {"type": "long"},
            "id": {"type": "keyword"}, "start": {"type": "date"}, "end": {"type": "date"},
            "dataset": {"type": "keyword"}, "module": {"type": "keyword"}, "url": {"type": "keyword"},
        }},
        "rule": {"properties": {
            "id": {"type": "keyword"}, "name": {"type": "keyword"}, "description": {"type": "text"},
            "ruleset": {"type": "keyword"}, "version": {"type": "keyword"},
        }},
        "observer": {"properties": {
            "product": {"type": "keyword"}, "vendor": {"type": "keyword"}, "type": {"type": "keyword"},
            "name": {"type": "keyword"}, "hostname": {"type": "keyword"},
        }},
        "host": {"properties": {"name": {"type": "keyword"}}},
        "jitsec": {"properties": {"remediation": {"type": "text"}, "incident": {"properties": {
            "incident_id": {"type": "keyword"}, "fingerprint": {"type": "keyword"},
            "lease_id": {"type": "keyword"}, "agent": {"type": "keyword"}, "task": {"type": "keyword"},
            "scopes": {"type": "keyword"}, "locations": {"type": "keyword"}, "preview": {"type": "keyword"},
            "action": {"type": "keyword"}, "broker": {"type": "keyword"},
            "first_seen": {"type": "double"}, "last_seen": {"type": "double"},
            "revoked_at": {"type": "double"}, "latency_ms": {"type": "double"},
        }}}},
    }
}


_iso = iso_utc


def incident_to_ecs(incident: Incident, context: AlertContext | None = None) -> dict[str, Any]:
    """The ECS document for one incident version."""
    context = context or AlertContext()
    link = context.incident_link(incident)
    document: dict[str, Any] = {
        "@timestamp": _iso(incident.last_seen),
        "message": incident_summary(incident),
        "tags": ["jitsec", "secret-leak", incident.severity.value, incident.action.value],
        "event": {
            "kind": "alert",
            "category": ["intrusion_detection"],
            "type": ["indicator"],
            "action": incident.action.value,
            "outcome": _OUTCOME.get(incident.action, "unknown"),
            "severity": _SEVERITY_SCORE[incident.severity],
            "id": incident.incident_id,
            "start": _iso(incident.first_seen),
            "end": _iso(incident.last_seen),
            "dataset": "jitsec.incident",
            "module": "jitsec",
        },
        "rule": {
            "id": incident.rule_id,
            "name": incident.rule_id,
            "description": incident.description,
            "ruleset": "jitsec",
            "version": incident.rules_digest,
        },
        "observer": {"product": "jitsec", "vendor": "jitsec", "type": "secret-scanner",
                     "name": context.scanner, "hostname": context.host},
        "host": {"name": context.host},
        "jitsec": {"incident": INCIDENT.to_dict(incident), "remediation": context.remediation(incident)},
    }
    if link:
        document["event"]["url"] = link
    return document


@dataclass(frozen=True, slots=True)
class EsAddress:
    """Where and how to reach Elasticsearch (secrets excluded: they come from the environment)."""

    url: str
    index: str
    ca: str | None = None
    auth: str | None = None  # None, "apikey" or "basic"
    username: str | None = None


_ES_PARAMETERS = {"ca", "auth", "username"}


def parse_elasticsearch_sink_spec(spec: str) -> tuple[str, str]:
    """``elasticsearch://HOST:PORT/INDEX`` → ``(url, index)``; ``ValueError`` says what was expected."""
    address = parse_elasticsearch_address(spec)
    return address.url, address.index


def parse_elasticsearch_address(spec: str) -> EsAddress:
    """``elasticsearch[s]://HOST:PORT/INDEX[?ca=&auth=&username=]`` → ``EsAddress``."""
    expected = ("expected elasticsearch://HOST:PORT/INDEX or elasticsearchs://HOST:PORT/INDEX"
                "[?ca=PATH&auth=apikey|basic&username=NAME] (a lowercase index name)")
    parts = urlsplit(spec)
    try:
        port = parts.port
    except ValueError:
        port = None
    index = parts.path.lstrip("/") or DEFAULT_INDEX
    if parts.scheme not in ("elasticsearch", "elasticsearchs") or not parts.hostname or port is None or any(
            c in index for c in ' "*,/\\<>|?#') or index != index.lower():
        raise ValueError(f"elasticsearch sink {spec!r}: {expected}")
    query = {key: values[-1] for key, values in parse_qs(parts.query, keep_blank_values=True).items()}
    unknown = sorted(set(query) - _ES_PARAMETERS)
    tls = parts.scheme == "elasticsearchs"
    if unknown or (query and not tls):
        problem = f"unknown parameter {unknown[0]}" if unknown else "ca, auth and username need elasticsearchs://"
        raise ValueError(f"elasticsearch sink {spec!r}: {problem}; {expected}")
    auth = query.get("auth")
    if auth not in (None, "apikey", "basic") or (auth == "basic") != bool(query.get("username")):
        raise ValueError(f"elasticsearch sink {spec!r}: auth=apikey, or auth=basic with username=NAME")
    scheme = "https" if tls else "http"
    return EsAddress(f"{scheme}://{parts.hostname}:{port}", index, query.get("ca") or None, auth,
                     query.get("username") or None)


def elasticsearch_client(address: EsAddress, *, timeout: float = 10.0,
                         env: Mapping[str, str] | None = None) -> Elasticsearch:
    """The client for ``address``, with its CA file and credentials (``ValueError`` when the
    credential variable is not set)."""
    env = os.environ if env is None else env
    options: dict[str, Any] = {"request_timeout": timeout, "max_retries": 0}
    if address.ca:
        options["ca_certs"] = address.ca
    if address.auth == "apikey":
        if not env.get(API_KEY_ENV):
            raise ValueError(f"elasticsearch sink {address.url}: auth=apikey needs ${API_KEY_ENV}")
        options["api_key"] = env[API_KEY_ENV]
    elif address.auth == "basic":
        if not env.get(PASSWORD_ENV):
            raise ValueError(f"elasticsearch sink {address.url}: auth=basic needs ${PASSWORD_ENV}")
        options["basic_auth"] = (address.username, env[PASSWORD_ENV])
    return Elasticsearch(address.url, **options)


class ElasticsearchSink(SpooledSink):
    def __init__(self, url: str, spool_dir: Path | str, *, index: str = DEFAULT_INDEX,
                 backoff: Backoff | None = None, timeout: float = 10.0,
                 client: Elasticsearch | None = None, context: AlertContext | None = None) -> None:
        self.url = url
        self.index = index
        self._client = client or Elasticsearch(url, request_timeout=timeout, max_retries=0)
        self.owns_client = client is None
        self._index_ready = False
        super().__init__(f"elasticsearch:{url}/{index}", spool_dir, backoff=backoff, context=context)

    def deliver(self, incident: Incident) -> None:
        try:
            self._ensure_index()
            document = incident_to_ecs(incident, self.context)
            self._client.index(index=self.index, id=incident.incident_id, document=document,
                               version=incident.version, version_type="external")
        except ConflictError:
            return  # this or a newer version is already indexed
        except BadRequestError as error:
            raise PermanentDeliveryError(f"elasticsearch refused the incident: {error.error}") from None
        except (TransportError, ApiError) as error:
            raise DeliveryError(f"elasticsearch unavailable: {type(error).__name__}") from None

    def _ensure_index(self) -> None:
        if self._index_ready:
            return
        try:
            self._client.indices.create(index=self.index, mappings=MAPPINGS)
        except BadRequestError as error:
            if error.error != "resource_already_exists_exception":
                raise
        self._index_ready = True

    def _close_receiver(self) -> None:
        if self.owns_client:
            self._client.close()


def build_elasticsearch_sink(spec: str, spool_dir: Path | str, *, context: AlertContext | None = None,
                             env: Mapping[str, str] | None = None) -> ElasticsearchSink:
    address = parse_elasticsearch_address(spec)
    client = elasticsearch_client(address, env=env)
    sink = ElasticsearchSink(address.url, spool_dir, index=address.index, client=client,
                             context=context)
    sink.owns_client = True
    return sink
