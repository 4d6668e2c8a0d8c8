"""Shared HTTP plumbing for the REST channels: transport errors and status codes to typed errors."""

from __future__ import annotations

import datetime as dt
import email.utils
from typing import Any

import httpx

from cloud.notifications.channels.base import PermanentDeliveryError, TransientDeliveryError

DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
MAX_RETRY_AFTER = dt.timedelta(hours=24)


def parse_retry_after(value: str | None, now: dt.datetime | None = None) -> dt.timedelta | None:
    """Retry-After is either delta-seconds or an HTTP-date; anything else is ignored."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(dt.timedelta(seconds=int(value)), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    delay = when - (now or dt.datetime.now(dt.UTC))
    return min(max(delay, dt.timedelta(0)), MAX_RETRY_AFTER)


async def request(client: httpx.AsyncClient, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """Send a request; network trouble becomes `TransientDeliveryError`."""
    try:
        return await client.request(method, url, **kwargs)
    except httpx.TimeoutException as exc:
        raise TransientDeliveryError(f"timeout talking to {url}: {type(exc).__name__}") from exc
    except httpx.TransportError as exc:
        raise TransientDeliveryError(f"connection to {url} failed: {type(exc).__name__}: {exc}") from exc


def json_body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def is_transient_status(status: int) -> bool:
    return status in (408, 425, 429) or status >= 500


def raise_for_status(response: httpx.Response, reason: str, code: str | None = None) -> None:
    """Generic split used when the provider's own error code did not decide it."""
    status = response.status_code
    if status < 400:
        return
    if is_transient_status(status):
        raise TransientDeliveryError(
            reason,
            retry_after=parse_retry_after(response.headers.get("retry-after")),
            provider_status=status,
            provider_code=code,
        )
    raise PermanentDeliveryError(reason, provider_status=status, provider_code=code)
