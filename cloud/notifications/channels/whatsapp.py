"""WhatsApp through Meta's Cloud API: pre-approved template messages with body parameters."""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import BaseModel, SecretStr

from cloud.notifications.channels import _http
from cloud.notifications.channels.base import (
    Channel,
    DeliveryResult,
    OutgoingMessage,
    PermanentDeliveryError,
    TransientDeliveryError,
    utc_now,
)
from cloud.notifications.kinds import ChannelKind

# Graph API error codes (developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes).
RATE_LIMIT_CODES = frozenset({4, 80007, 130429, 131048, 131056})
TEMPORARY_CODES = frozenset({1, 2, 131000, 131016, 133004})
INVALID_RECIPIENT_CODES = frozenset({131026, 131030})


class WhatsAppSettings(BaseModel):
    access_token: SecretStr
    phone_number_id: str
    api_version: str = "v21.0"
    base_url: str = "https://graph.facebook.com"
    template_prefix: str = "studyspot_"  # templates are approved at Meta as studyspot_<event kind>
    timeout_seconds: float = 10.0


class WhatsAppChannel(Channel):
    kind = ChannelKind.WHATSAPP

    def __init__(self, settings: WhatsAppSettings, client: httpx.AsyncClient | None = None) -> None:
        self._settings = settings
        self._client = client or httpx.AsyncClient(timeout=settings.timeout_seconds)
        self._owns_client = client is None

    async def send(self, message: OutgoingMessage) -> DeliveryResult:
        settings = self._settings
        url = f"{settings.base_url.rstrip('/')}/{settings.api_version}/{settings.phone_number_id}/messages"
        response = await _http.request(
            self._client,
            "POST",
            url,
            json=template_payload(message, settings.template_prefix),
            headers={"Authorization": f"Bearer {settings.access_token.get_secret_value()}"},
        )
        if response.status_code >= 400:
            raise _graph_error(response)
        messages = _http.json_body(response).get("messages") or [{}]
        return DeliveryResult(
            self.kind,
            provider_message_id=messages[0].get("id"),
            accepted_at=utc_now(),
            provider_status=str(messages[0].get("message_status", "accepted")),
        )

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()


def template_payload(message: OutgoingMessage, template_prefix: str) -> dict[str, Any]:
    parameters = [{"type": "text", "text": value} for value in message.content.template_parameters]
    template: dict[str, Any] = {
        "name": f"{template_prefix}{message.kind.value}",
        "language": {"code": message.language.value},
    }
    if parameters:
        template["components"] = [{"type": "body", "parameters": parameters}]
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": message.recipient.removeprefix("+"),
        "type": "template",
        "template": template,
    }


def _graph_error(response: httpx.Response) -> Exception:
    error = _http.json_body(response).get("error") or {}
    code = error.get("code")
    status = response.status_code
    reason = f"WhatsApp {status} error {code}: {error.get('message', response.text[:200])}"
    provider_code = str(code) if code is not None else None
    if code in INVALID_RECIPIENT_CODES:
        return PermanentDeliveryError(
            reason, remove_recipient=True, provider_status=status, provider_code=provider_code
        )
    if code in RATE_LIMIT_CODES or code in TEMPORARY_CODES or _http.is_transient_status(status):
        return TransientDeliveryError(
            reason,
            retry_after=_http.parse_retry_after(response.headers.get("retry-after")),
            provider_status=status,
            provider_code=provider_code,
        )
    return PermanentDeliveryError(reason, provider_status=status, provider_code=provider_code)
