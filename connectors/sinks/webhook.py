"""Webhook sink: a signed JSON POST per incident version, as an alert document or as Slack blocks.

Body (``format=json``, the default): the ``jitsec.alert/2`` document (``alert.py``) plus ``text``, the
one-line summary that Slack and most chat webhooks show. ``format=slack``: ``{"text", "blocks"}``,
Slack Block Kit sections with the redacted preview, rule, severity, location, action, scanner,
remediation and the console link, for an incoming-webhook URL.

Signing (when a secret is set): ``X-Jitsec-Timestamp: <unix seconds>`` and
``X-Jitsec-Signature: v1=<hex HMAC-SHA256(secret, timestamp + "." + body)>`` over the exact bytes
sent. A receiver recomputes it, compares in constant time and refuses a timestamp more than
``REPLAY_WINDOW`` seconds from its clock (``verify_signature`` does both; docs/alerts.md shows it in a
few lines for receivers without jitsec). A retry is signed again with its own timestamp, so an alert
delayed in the spool longer than the window still verifies. The secret is never logged.

2xx is delivered; 408, 425, 429, 5xx and transport errors are retried (backoff, in order); any other
4xx means the receiver will never take it, so the payload is set aside in the spool's dead table.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import httpx
from jitsec.connectors.sinks.alert import ALERT_SCHEMA, AlertContext, alert_document
from jitsec.connectors.sinks.base import SpooledSink
from jitsec.connectors.sinks.serialize import incident_summary
from jitsec.connectors.sinks.spool import Backoff, DeliveryError, PermanentDeliveryError

from jitsec.kernel.records import Incident

SECRET_ENV = "JITSEC_WEBHOOK_SECRET"
REPLAY_WINDOW = 300  # seconds a receiver should accept between the timestamp and its own clock
TIMESTAMP_HEADER = "X-Jitsec-Timestamp"
SIGNATURE_HEADER = "X-Jitsec-Signature"
WebhookFormat = Literal["json", "slack"]
_RETRYABLE = {408, 425, 429}


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The ``X-Jitsec-Signature`` value: ``v1=`` and the hex HMAC-SHA256 of ``timestamp.body``."""
    return "v1=" + hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()


def verify_signature(secret: bytes, headers: Mapping[str, str], body: bytes, *, now: float | None = None,
                     window: float = REPLAY_WINDOW) -> bool:
    """A receiver's check: the signature matches and the timestamp is within ``window`` seconds."""
    timestamp = headers.get(TIMESTAMP_HEADER, "")
    if not timestamp.isdigit():
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > window:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), headers.get(SIGNATURE_HEADER, ""))


def _mrkdwn(text: str) -> str:
    """Slack's three control characters escaped, so a path or preview cannot form a link or mention."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_blocks(incident: Incident, context: AlertContext) -> dict[str, Any]:
    """``{"text", "blocks"}`` for a Slack incoming webhook."""
    location = incident.locations[0] if incident.locations else "?"
    more = f" (+{len(incident.locations) - 1} more)" if len(incident.locations) > 1 else ""
    fields = [
        ("Secret", f"`{_mrkdwn(incident.preview)}`"),
        ("Rule", f"`{_mrkdwn(incident.rule_id)}`"),
        ("Severity", incident.severity.value.upper()),
        ("Action", incident.action.value),
        ("Location", f"`{_mrkdwn(location)}`{more}"),
        ("Seen", f"{incident.occurrences}×, scanner {_mrkdwn(context.scanner)} on {_mrkdwn(context.host)}"),
    ]
    if incident.related:
        fields.append(("Paired with", "\n".join(f"`{_mrkdwn(partner)}`" for partner in incident.related)))
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": (
            f"{incident.severity.value.upper()}: leaked {incident.rule_id}")[:150]}},
        {"type": "section",
         "fields": [{"type": "mrkdwn", "text": f"*{name}*\n{value}"} for name, value in fields]},
        {"type": "section",
         "text": {"type": "mrkdwn", "text": f"*Remediation*\n{_mrkdwn(context.remediation(incident))}"}},
    ]
    link = context.incident_link(incident)
    footer = f"incident {incident.incident_id} v{incident.version} · fp {incident.fingerprint[:23]}"
    if link:
        footer += f" · <{link}|open in the console>"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": footer}]})
    return {"text": incident_summary(incident), "blocks": blocks}


class WebhookSink(SpooledSink):
    def __init__(
        self,
        url: str,
        spool_dir: Path | str,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 5.0,
        backoff: Backoff | None = None,
        secret: bytes | None = None,
        body_format: WebhookFormat = "json",
        context: AlertContext | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"webhook URL must be http(s)://, got {url!r}")
        if body_format not in ("json", "slack"):
            raise ValueError(f"webhook format must be json or slack, got {body_format!r}")
        self.url = url
        self.body_format = body_format
        self.signed = bool(secret)
        self._secret = secret
        self._clock = clock
        self._client = httpx.Client(transport=transport, timeout=timeout)
        super().__init__(f"webhook:{url}", spool_dir, backoff=backoff, context=context)

    def body(self, incident: Incident) -> bytes:
        """The exact bytes POSTed for one incident version."""
        if self.body_format == "slack":
            payload = slack_blocks(incident, self.context)
        else:
            payload = {**alert_document(incident, self.context), "text": incident_summary(incident)}
        return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

    def deliver(self, incident: Incident) -> None:
        body = self.body(incident)
        headers = {"Content-Type": "application/json", "User-Agent": "jitsec"}
        if self.body_format == "json":
            headers["X-Jitsec-Schema"] = ALERT_SCHEMA
        if self._secret:
            timestamp = str(int(self._clock()))
            headers[TIMESTAMP_HEADER] = timestamp
            headers[SIGNATURE_HEADER] = sign(self._secret, timestamp, body)
        try:
            response = self._client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as error:
            raise DeliveryError(f"webhook unreachable: {type(error).__name__}") from None
        status = response.status_code
        if 200 <= status < 300:
            return
        if status >= 500 or status in _RETRYABLE:
            raise DeliveryError(f"webhook answered {status}")
        raise PermanentDeliveryError(f"webhook refused the incident with {status}")

    def _close_receiver(self) -> None:
        self._client.close()
