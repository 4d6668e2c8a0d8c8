"""SMS through Twilio's Messages resource, plus the `X-Twilio-Signature` check for status callbacks."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import httpx
from pydantic import BaseModel, SecretStr, model_validator

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

# Twilio error codes (https://www.twilio.com/docs/api/errors) that mean "this number will never work".
INVALID_RECIPIENT_CODES = frozenset({21211, 21214, 21217, 21612, 21614, 21408, 21610})
RATE_LIMIT_CODES = frozenset({20429, 14107})


class TwilioSettings(BaseModel):
    account_sid: str
    auth_token: SecretStr
    from_number: str | None = None
    messaging_service_sid: str | None = None
    base_url: str = "https://api.twilio.com"
    status_callback_url: str | None = None
    timeout_seconds: float = 10.0

    @model_validator(mode="after")
    def _needs_a_sender(self) -> TwilioSettings:
        if not (self.from_number or self.messaging_service_sid):
            raise ValueError("set from_number or messaging_service_sid")
        return self


class SmsChannel(Channel):
    kind = ChannelKind.SMS

    def __init__(self, settings: TwilioSettings, client: httpx.AsyncClient | None = None) -> None:
        self._settings = settings
        self._client = client or httpx.AsyncClient(timeout=settings.timeout_seconds)
        self._owns_client = client is None

    async def send(self, message: OutgoingMessage) -> DeliveryResult:
        settings = self._settings
        url = f"{settings.base_url.rstrip('/')}/2010-04-01/Accounts/{settings.account_sid}/Messages.json"
        response = await _http.request(
            self._client,
            "POST",
            url,
            data=self._form(message),
            auth=(settings.account_sid, settings.auth_token.get_secret_value()),
        )
        if response.status_code >= 400:
            raise _twilio_error(response)
        body = _http.json_body(response)
        return DeliveryResult(
            self.kind,
            provider_message_id=str(body.get("sid")) if body.get("sid") else None,
            accepted_at=utc_now(),
            provider_status=str(body.get("status", "queued")),
        )

    def _form(self, message: OutgoingMessage) -> dict[str, str]:
        settings = self._settings
        form = {"To": message.recipient, "Body": message.content.text}
        if settings.messaging_service_sid:
            form["MessagingServiceSid"] = settings.messaging_service_sid
        else:
            form["From"] = settings.from_number or ""
        if settings.status_callback_url:
            form["StatusCallback"] = settings.status_callback_url
        return form

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()


def _twilio_error(response: httpx.Response) -> Exception:
    body = _http.json_body(response)
    code = body.get("code")
    reason = f"Twilio {response.status_code} error {code}: {body.get('message', response.text[:200])}"
    provider_code = str(code) if code is not None else None
    if code in INVALID_RECIPIENT_CODES:
        return PermanentDeliveryError(
            reason, remove_recipient=True, provider_status=response.status_code, provider_code=provider_code
        )
    if code in RATE_LIMIT_CODES or _http.is_transient_status(response.status_code):
        return TransientDeliveryError(
            reason,
            retry_after=_http.parse_retry_after(response.headers.get("retry-after")),
            provider_status=response.status_code,
            provider_code=provider_code,
        )
    return PermanentDeliveryError(reason, provider_status=response.status_code, provider_code=provider_code)


def twilio_signature(auth_token: str, url: str, params: Mapping[str, str | Iterable[str]]) -> str:
    """Twilio's scheme: base64(HMAC-SHA1(auth token, full URL + each POST key+value, keys sorted))."""
    payload = url
    for key in sorted(params):
        value = params[key]
        values = [value] if isinstance(value, str) else sorted(value)
        payload += "".join(key + item for item in values)
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def verify_twilio_signature(
    auth_token: str, url: str, params: Mapping[str, str | Iterable[str]], signature: str | None
) -> bool:
    if not signature:
        return False
    expected = twilio_signature(auth_token, url, params)
    return hmac.compare_digest(expected.encode(), signature.encode())


@dataclass(frozen=True)
class SmsStatusUpdate:
    message_sid: str
    status: str  # queued, sending, sent, delivered, undelivered, failed
    error_code: str | None

    @property
    def failed(self) -> bool:
        return self.status in ("failed", "undelivered")


class InvalidStatusCallback(ValueError):
    """Unsigned, wrongly signed or incomplete Twilio status callback."""


def parse_status_callback(
    auth_token: str, url: str, params: Mapping[str, str], signature: str | None
) -> SmsStatusUpdate:
    """Verify and read a StatusCallback POST; `url` must be the exact public URL Twilio called."""
    if not verify_twilio_signature(auth_token, url, params, signature):
        raise InvalidStatusCallback("X-Twilio-Signature does not match")
    sid = params.get("MessageSid")
    status = params.get("MessageStatus")
    if not sid or not status:
        raise InvalidStatusCallback("MessageSid and MessageStatus are required")
    return SmsStatusUpdate(message_sid=sid, status=status, error_code=params.get("ErrorCode") or None)
