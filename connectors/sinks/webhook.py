"""Webhook sink: a JSON POST per incident version, Slack-compatible.

Body: ``{"text": <one-line summary>, "incident": <jitsec.incident/1 dict>}``. Slack and most chat
webhooks show ``text``; programs read ``incident``. 2xx is delivered; 408, 429, 5xx and transport
errors are retried (backoff, in order); any other 4xx means the receiver will never take it, so the
payload is set aside in the spool's dead table instead of stalling the queue.
"""

from __future__ import annotations

from pathlib import Path

import httpx
from jitsec.connectors.sinks.base import SpooledSink
from jitsec.connectors.sinks.serialize import incident_summary
from jitsec.connectors.sinks.spool import Backoff, DeliveryError, PermanentDeliveryError

from jitsec.kernel.records import Incident
from jitsec.kernel.schemas import INCIDENT

_RETRYABLE = {408, 425, 429}


class WebhookSink(SpooledSink):
    def __init__(
        self,
        url: str,
        spool_dir: Path | str,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 5.0,
        backoff: Backoff | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"webhook URL must be http(s)://, got {url!r}")
        self.url = url
        self._client = httpx.Client(transport=transport, timeout=timeout)
        super().__init__(f"webhook:{url}", spool_dir, backoff=backoff)

    def deliver(self, incident: Incident) -> None:
        body = {"text": incident_summary(incident), "incident": INCIDENT.to_dict(incident)}
        try:
            response = self._client.post(self.url, json=body)
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
