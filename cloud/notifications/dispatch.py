"""One delivery attempt for one outbox row, with no database: the worker claims, calls, persists.

    update = await deliver(row, channels, prefs=prefs, now=now, policy=policy, links=links, limiter=limiter)
    # write `update` back to the row in the claiming transaction

Every failure mode becomes an `OutboxUpdate`; nothing here raises for bad rows or provider errors.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass

from cloud.notifications import preferences, recipients, retry, templates
from cloud.notifications.channels.base import (
    Channel,
    DeliveryError,
    OutgoingMessage,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from cloud.notifications.kinds import EVENT_SPECS, ChannelKind, EventKind
from cloud.notifications.ratelimit import SendRateLimiter
from cloud.notifications.schemas import OutboxRow, OutboxStatus, OutboxUpdate
from cloud.notifications.unsubscribe import make_unsubscribe_token, unsubscribe_url

logger = logging.getLogger("studyspot.notifications")


@dataclass(frozen=True)
class UnsubscribeLinks:
    secret: str
    base_url: str  # public URL of the one-click unsubscribe endpoint

    def url_for(self, recipient_id: str, kind: EventKind | None, now: dt.datetime) -> str:
        return unsubscribe_url(self.base_url, make_unsubscribe_token(self.secret, recipient_id, kind, now))


def build_message(row: OutboxRow, links: UnsubscribeLinks | None, now: dt.datetime) -> OutgoingMessage:
    """Render and validate; raises TemplateRenderError or InvalidRecipientError for a bad row."""
    recipient = recipients.normalize_recipient(row.channel, row.recipient)
    link = None
    if links and row.channel is ChannelKind.EMAIL and row.recipient_user_id is not None:
        if not EVENT_SPECS[row.kind].mandatory:
            link = links.url_for(str(row.recipient_user_id), None, now)
    content = templates.render(
        row.kind, row.channel, row.language, localized_context(row), library_tz=row.library_tz,
        unsubscribe_url=link,
    )  # fmt: skip
    return OutgoingMessage(
        message_id=str(row.id),
        channel=row.channel,
        kind=row.kind,
        recipient=recipient,
        language=row.language,
        content=content,
        unsubscribe_url=link,
    )


def localized_context(row: OutboxRow) -> dict[str, object]:
    """The context with `localized[<language>]` (text the sender wrote per language) laid over it:
    the recipient's language is only known for sure at send time."""
    localized = row.context.get("localized")
    if not isinstance(localized, dict) or not isinstance(localized.get(row.language.value), dict):
        return row.context
    return {**row.context, **localized[row.language.value]}


def _dead(row: OutboxRow, reason: str, remove_recipient: bool = False) -> OutboxUpdate:
    return OutboxUpdate(
        status=OutboxStatus.DEAD,
        attempts=row.attempts + 1,
        last_error=reason,
        remove_recipient=remove_recipient,
    )


async def deliver(
    row: OutboxRow,
    channels: Mapping[ChannelKind, Channel],
    *,
    prefs: preferences.NotificationPreferences,
    now: dt.datetime,
    policy: retry.RetryPolicy | None = None,
    links: UnsubscribeLinks | None = None,
    limiter: SendRateLimiter | None = None,
    rng: random.Random | None = None,
) -> OutboxUpdate:
    policy = policy or retry.RetryPolicy()
    decision = preferences.should_send_now(
        row.kind, row.channel, prefs, now, row.library_tz, expires_at=row.expires_at
    )
    if decision.action is preferences.Action.SUPPRESS:
        return OutboxUpdate(status=OutboxStatus.SUPPRESSED, attempts=row.attempts, last_error=decision.reason)
    if decision.action is preferences.Action.DEFER:
        return OutboxUpdate(
            status=OutboxStatus.PENDING, attempts=row.attempts, next_attempt_at=decision.defer_until
        )
    channel = channels.get(row.channel)
    if channel is None:
        return _dead(row, f"no {row.channel.value} channel configured")
    try:
        message = build_message(row, links, now)
    except (templates.TemplateRenderError, recipients.InvalidRecipientError) as exc:
        return _dead(row, f"{type(exc).__name__}: {exc}", isinstance(exc, recipients.InvalidRecipientError))
    wait = await limiter.acquire(row.channel, message.recipient) if limiter else None
    if wait is not None:
        return OutboxUpdate(
            status=OutboxStatus.PENDING,
            attempts=row.attempts,
            next_attempt_at=now + wait,
            last_error=f"rate limited for {wait.total_seconds():.1f} s",
        )
    return await _attempt(row, channel, message, policy, now, rng)


async def _attempt(
    row: OutboxRow,
    channel: Channel,
    message: OutgoingMessage,
    policy: retry.RetryPolicy,
    now: dt.datetime,
    rng: random.Random | None,
) -> OutboxUpdate:
    attempts = row.attempts + 1
    try:
        result = await channel.send(message)
    except DeliveryError as exc:
        error: DeliveryError = exc
    except Exception as exc:  # a buggy adapter must not kill the worker; retry like an outage
        logger.exception("channel %s crashed on %s", row.channel.value, row.id)
        error = TransientDeliveryError(f"unexpected {type(exc).__name__}: {exc}")
    else:
        return OutboxUpdate(
            status=OutboxStatus.SENT,
            attempts=attempts,
            provider_message_id=result.provider_message_id,
            sent_at=result.accepted_at,
        )
    verdict = retry.after_failure(policy, attempts, error, now, rng)
    logger.warning("notification %s attempt %d failed: %s", row.id, attempts, verdict.last_error)
    return OutboxUpdate(
        status=OutboxStatus.DEAD if verdict.dead_letter else OutboxStatus.PENDING,
        attempts=attempts,
        next_attempt_at=verdict.retry_at,
        last_error=verdict.last_error,
        remove_recipient=isinstance(error, PermanentDeliveryError) and error.remove_recipient,
    )
