"""Push through Firebase Cloud Messaging HTTP v1 with an OAuth2 service-account JWT bearer grant."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import jwt
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

FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_LIFETIME = 3600
TOKEN_REFRESH_MARGIN = 60  # seconds before expiry at which a cached token counts as stale
# FcmError codes meaning the device token is dead or not ours: forget it.
STALE_TOKEN_CODES = frozenset({"UNREGISTERED", "INVALID_ARGUMENT", "SENDER_ID_MISMATCH"})
TRANSIENT_CODES = frozenset({"QUOTA_EXCEEDED", "UNAVAILABLE", "INTERNAL"})


class ServiceAccount(BaseModel):
    """The fields of a Google service-account JSON key that the bearer flow needs."""

    project_id: str
    client_email: str
    private_key: SecretStr
    private_key_id: str | None = None
    token_uri: str = "https://oauth2.googleapis.com/token"  # noqa: S105 - a URL, not a secret


class FcmSettings(BaseModel):
    service_account: ServiceAccount
    base_url: str = "https://fcm.googleapis.com"
    timeout_seconds: float = 10.0


class AccessTokenCache:
    """Exchanges a signed RS256 assertion for an access token and reuses it until shortly before expiry."""

    def __init__(self, account: ServiceAccount, client: httpx.AsyncClient) -> None:
        self._account = account
        self._client = client
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()
        self.fetch_count = 0

    async def get(self) -> str:
        async with self._lock:
            if self._token is None or time.monotonic() >= self._expires_at - TOKEN_REFRESH_MARGIN:
                await self._fetch()
            assert self._token is not None
            return self._token

    def invalidate(self) -> None:
        self._token = None

    def _assertion(self) -> str:
        account = self._account
        now = int(time.time())
        claims = {
            "iss": account.client_email,
            "sub": account.client_email,
            "scope": FCM_SCOPE,
            "aud": account.token_uri,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME,
        }
        headers = {"kid": account.private_key_id} if account.private_key_id else None
        try:
            return jwt.encode(claims, account.private_key.get_secret_value(), "RS256", headers=headers)
        except (ValueError, TypeError, jwt.PyJWTError) as exc:
            raise PermanentDeliveryError(f"service-account private key unusable: {exc}") from exc

    async def _fetch(self) -> None:
        form = {"grant_type": JWT_BEARER_GRANT, "assertion": self._assertion()}
        response = await _http.request(self._client, "POST", self._account.token_uri, data=form)
        body = _http.json_body(response)
        if response.status_code >= 400:
            detail = body.get("error_description") or body.get("error") or response.text[:200]
            _http.raise_for_status(response, f"OAuth token request failed: {detail}", body.get("error"))
        token, expires_in = body.get("access_token"), body.get("expires_in", 3600)
        if not isinstance(token, str) or not isinstance(expires_in, int):
            raise TransientDeliveryError("OAuth token response lacks access_token/expires_in")
        self._token = token
        self._expires_at = time.monotonic() + expires_in
        self.fetch_count += 1


class PushChannel(Channel):
    kind = ChannelKind.PUSH

    def __init__(self, settings: FcmSettings, client: httpx.AsyncClient | None = None) -> None:
        self._settings = settings
        self._client = client or httpx.AsyncClient(timeout=settings.timeout_seconds)
        self._owns_client = client is None
        self.tokens = AccessTokenCache(settings.service_account, self._client)

    async def send(self, message: OutgoingMessage) -> DeliveryResult:
        response = await self._post(message)
        if response.status_code == 401:
            # The cached access token was revoked or expired early: fetch a new one, once.
            self.tokens.invalidate()
            response = await self._post(message)
        if response.status_code >= 400:
            raise _fcm_error(response)
        return DeliveryResult(
            self.kind, provider_message_id=_http.json_body(response).get("name"), accepted_at=utc_now()
        )

    async def _post(self, message: OutgoingMessage) -> httpx.Response:
        project = self._settings.service_account.project_id
        url = f"{self._settings.base_url.rstrip('/')}/v1/projects/{project}/messages:send"
        access_token = await self.tokens.get()
        return await _http.request(
            self._client,
            "POST",
            url,
            json=fcm_payload(message),
            headers={"Authorization": f"Bearer {access_token}"},
        )

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()


def fcm_payload(message: OutgoingMessage) -> dict[str, Any]:
    data = {"kind": message.kind.value, "notification_id": message.message_id, **message.data}
    return {
        "message": {
            "token": message.recipient,
            "notification": {"title": message.content.subject, "body": message.content.text},
            "data": data,
            "android": {"priority": "high"},
        }
    }


def _fcm_error_code(body: dict[str, Any]) -> tuple[str | None, str]:
    error = body.get("error") or {}
    for detail in error.get("details") or []:
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("FcmError"):
            return detail.get("errorCode"), str(error.get("message", ""))
    return error.get("status"), str(error.get("message", ""))


def _fcm_error(response: httpx.Response) -> Exception:
    code, text = _fcm_error_code(_http.json_body(response))
    status = response.status_code
    reason = f"FCM {status} {code}: {text or response.text[:200]}"
    if code in STALE_TOKEN_CODES:
        return PermanentDeliveryError(
            reason, remove_recipient=True, provider_status=status, provider_code=code
        )
    if code in TRANSIENT_CODES or _http.is_transient_status(status):
        return TransientDeliveryError(
            reason,
            retry_after=_http.parse_retry_after(response.headers.get("retry-after")),
            provider_status=status,
            provider_code=code,
        )
    return PermanentDeliveryError(reason, provider_status=status, provider_code=code)
