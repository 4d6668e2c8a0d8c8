"""The one interface every delivery channel implements, and its typed failures.

The outbox worker calls `await channel.send(message)` and reacts to the outcome:
a `DeliveryResult` marks the row sent; `TransientDeliveryError` schedules a retry (honouring
`retry_after` when the provider gave one); `PermanentDeliveryError` dead-letters the row at once,
and when `remove_recipient` is set the address/device token must be forgotten.
"""

from __future__ import annotations

import abc
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Self

from cloud.notifications.kinds import ChannelKind, EventKind, Language


@dataclass(frozen=True)
class RenderedMessage:
    subject: str
    text: str
    html: str | None = None
    # Positional body parameters for provider-side templates (WhatsApp), already formatted.
    template_parameters: tuple[str, ...] = ()


@dataclass(frozen=True)
class OutgoingMessage:
    """One message for one recipient on one channel, ready to hand to a provider."""

    message_id: str  # the outbox row id; providers that dedupe get it as an idempotency key
    channel: ChannelKind
    kind: EventKind
    recipient: str  # email address, E.164 phone number or push device token
    language: Language
    content: RenderedMessage
    unsubscribe_url: str | None = None
    data: Mapping[str, str] = field(default_factory=dict)  # push payload data


@dataclass(frozen=True)
class DeliveryResult:
    channel: ChannelKind
    provider_message_id: str | None
    accepted_at: dt.datetime
    provider_status: str = "accepted"


class DeliveryError(Exception):
    """A send that did not go through; `reason` is safe to store as the row's last error."""

    def __init__(
        self, reason: str, *, provider_status: int | None = None, provider_code: str | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.provider_status = provider_status
        self.provider_code = provider_code


class TransientDeliveryError(DeliveryError):
    """Try again later: rate limits (429), provider outages (5xx), connection failures."""

    def __init__(
        self,
        reason: str,
        *,
        retry_after: dt.timedelta | None = None,
        provider_status: int | None = None,
        provider_code: str | None = None,
    ) -> None:
        super().__init__(reason, provider_status=provider_status, provider_code=provider_code)
        self.retry_after = retry_after


class PermanentDeliveryError(DeliveryError):
    """Retrying cannot help: bad recipient, rejected credentials, malformed request."""

    def __init__(
        self,
        reason: str,
        *,
        remove_recipient: bool = False,
        provider_status: int | None = None,
        provider_code: str | None = None,
    ) -> None:
        super().__init__(reason, provider_status=provider_status, provider_code=provider_code)
        self.remove_recipient = remove_recipient


class Channel(abc.ABC):
    kind: ChannelKind

    @abc.abstractmethod
    async def send(self, message: OutgoingMessage) -> DeliveryResult:
        """Deliver one message or raise `TransientDeliveryError` / `PermanentDeliveryError`."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook, most channels hold nothing
        """Release connections held by the channel."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
