"""Outbox rows driven through `deliver` end to end: real SMTP server, provider fakes over HTTP."""

from __future__ import annotations

import datetime as dt
import io
import random
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from cloud.notifications.channels.base import Channel
from cloud.notifications.channels.console import ConsoleChannel
from cloud.notifications.channels.email import EmailChannel, SmtpSecurity, SmtpSettings
from cloud.notifications.channels.push import FcmSettings, PushChannel, ServiceAccount
from cloud.notifications.channels.sms import SmsChannel, TwilioSettings
from cloud.notifications.channels.whatsapp import WhatsAppChannel, WhatsAppSettings
from cloud.notifications.dispatch import UnsubscribeLinks, deliver
from cloud.notifications.kinds import ChannelKind, EventKind, Language
from cloud.notifications.preferences import NotificationPreferences, QuietHours
from cloud.notifications.retry import RetryPolicy
from cloud.notifications.samples import SAMPLE_CONTEXTS
from cloud.notifications.schemas import OutboxRow, OutboxStatus, dedupe_key
from cloud.notifications.unsubscribe import verify_unsubscribe_token

from .conftest import (
    DEVICE_TOKEN,
    FCM_EMAIL,
    FCM_PROJECT,
    TWILIO_SID,
    TWILIO_TOKEN,
    WA_PHONE_ID,
    WA_TOKEN,
    RunningFake,
    SmtpServer,
    free_port,
)
from .helpers import UNSUBSCRIBE_SECRET, body_of

NOON_IST = dt.datetime(2026, 11, 24, 6, 30, tzinfo=dt.UTC)
NIGHT_IST = dt.datetime(2026, 11, 24, 18, 30, tzinfo=dt.UTC)  # midnight in Kolkata
LINKS = UnsubscribeLinks(UNSUBSCRIBE_SECRET, "https://api.studyspot.example/api/v1/notifications/unsubscribe")
PREFS = NotificationPreferences(
    language=Language.HINDI, quiet_hours=QuietHours(start=dt.time(22), end=dt.time(7))
)
POLICY = RetryPolicy(max_attempts=3)
TENANT = uuid.uuid4()


def row(kind: EventKind, channel: ChannelKind, recipient: str, **changes: Any) -> OutboxRow:
    fields: dict[str, Any] = {
        "tenant_id": TENANT,
        "recipient_user_id": uuid.uuid4(),
        "kind": kind,
        "channel": channel,
        "recipient": recipient,
        "language": Language.HINDI,
        "context": SAMPLE_CONTEXTS[kind],
        "dedupe_key": dedupe_key(kind, "subject-1", channel, recipient),
        "next_attempt_at": NOON_IST,
        "created_at": NOON_IST,
    }
    return OutboxRow(**(fields | changes))


@pytest.fixture
async def channels(
    smtp_plain: SmtpServer,
    twilio: RunningFake,
    whatsapp: RunningFake,
    fcm: RunningFake,
    rsa_key_pem: tuple[str, str],
) -> AsyncIterator[dict[ChannelKind, Channel]]:
    client = httpx.AsyncClient(timeout=5)
    account = ServiceAccount(
        project_id=FCM_PROJECT,
        client_email=FCM_EMAIL,
        private_key=rsa_key_pem[0],
        token_uri=f"{fcm.base_url}/token",
    )
    built: dict[ChannelKind, Channel] = {
        ChannelKind.EMAIL: EmailChannel(
            SmtpSettings(
                host="127.0.0.1",
                port=smtp_plain.port,
                security=SmtpSecurity.NONE,
                from_address="bot@studyspot.example",
            )
        ),
        ChannelKind.SMS: SmsChannel(
            TwilioSettings(
                account_sid=TWILIO_SID,
                auth_token=TWILIO_TOKEN,
                from_number="+15005550006",
                base_url=twilio.base_url,
            ),
            client,
        ),
        ChannelKind.WHATSAPP: WhatsAppChannel(
            WhatsAppSettings(access_token=WA_TOKEN, phone_number_id=WA_PHONE_ID, base_url=whatsapp.base_url),
            client,
        ),
        ChannelKind.PUSH: PushChannel(FcmSettings(service_account=account, base_url=fcm.base_url), client),
    }
    yield built
    for channel in built.values():
        await channel.aclose()
    await client.aclose()


async def test_every_event_reaches_the_smtp_server_in_hindi(
    channels: dict[ChannelKind, Channel], smtp_plain: SmtpServer
) -> None:
    for kind in EventKind:
        address = f"{kind.value}@example.com"
        update = await deliver(
            row(kind, ChannelKind.EMAIL, address), channels, prefs=PREFS, now=NOON_IST, links=LINKS
        )
        assert update.status is OutboxStatus.SENT, (kind, update.last_error)
        received = smtp_plain.handler.last_to(address)
        assert received["Content-Language"] == "hi"
        assert any("\u0900" <= ch <= "\u097f" for ch in body_of(received, "plain")) or (
            kind is EventKind.OWNER_ANNOUNCEMENT
        )


async def test_unsubscribe_header_names_the_user_but_not_on_mandatory_mail(
    channels: dict[ChannelKind, Channel], smtp_plain: SmtpServer
) -> None:
    booking = row(EventKind.BOOKING_CONFIRMED, ChannelKind.EMAIL, "unsub@example.com")
    await deliver(booking, channels, prefs=PREFS, now=NOON_IST, links=LINKS)
    header = smtp_plain.handler.last_to("unsub@example.com")["List-Unsubscribe"]
    token = httpx.URL(header.strip("<>")).params["token"]
    assert verify_unsubscribe_token(UNSUBSCRIBE_SECRET, token).recipient_id == str(booking.recipient_user_id)

    await deliver(
        row(EventKind.OTP, ChannelKind.EMAIL, "otp@example.com"),
        channels,
        prefs=PREFS,
        now=NOON_IST,
        links=LINKS,
    )
    assert smtp_plain.handler.last_to("otp@example.com")["List-Unsubscribe"] is None


async def test_rate_limited_sms_is_retried_then_sent(
    channels: dict[ChannelKind, Channel], twilio: RunningFake
) -> None:
    message = row(EventKind.PAYMENT_FAILED, ChannelKind.SMS, "+919876543210")
    twilio.fake.fail_next(429, 20429, "Too Many Requests", retry_after=90)

    first = await deliver(message, channels, prefs=PREFS, now=NOON_IST, policy=POLICY, rng=random.Random(3))
    assert first.status is OutboxStatus.PENDING and first.attempts == 1
    assert first.next_attempt_at is not None and first.next_attempt_at >= NOON_IST + dt.timedelta(seconds=90)
    assert first.last_error is not None and "20429" in first.last_error

    retried = message.model_copy(update={"attempts": first.attempts})
    second = await deliver(retried, channels, prefs=PREFS, now=first.next_attempt_at, policy=POLICY)
    assert second.status is OutboxStatus.SENT and second.attempts == 2
    assert twilio.fake.messages[-1]["sid"] == second.provider_message_id
    assert "भुगतान" in twilio.fake.messages[-1]["Body"]


async def test_whatsapp_row_is_sent_as_approved_template(
    channels: dict[ChannelKind, Channel], whatsapp: RunningFake
) -> None:
    update = await deliver(
        row(EventKind.DUES_OVERDUE, ChannelKind.WHATSAPP, "+919876543210"),
        channels,
        prefs=PREFS,
        now=NOON_IST,
    )
    assert update.status is OutboxStatus.SENT
    assert whatsapp.fake.messages[-1]["template"]["name"] == "studyspot_dues_overdue"


async def test_quiet_hours_defer_without_sending(
    channels: dict[ChannelKind, Channel], twilio: RunningFake
) -> None:
    sent_before = len(twilio.fake.messages)
    update = await deliver(
        row(EventKind.INVOICE_READY, ChannelKind.SMS, "+919876543210"), channels, prefs=PREFS, now=NIGHT_IST
    )
    assert update.status is OutboxStatus.PENDING and update.attempts == 0
    assert update.next_attempt_at == dt.datetime(2026, 11, 25, 1, 30, tzinfo=dt.UTC)
    assert len(twilio.fake.messages) == sent_before


async def test_door_alert_goes_out_at_night(channels: dict[ChannelKind, Channel], fcm: RunningFake) -> None:
    update = await deliver(
        row(EventKind.DOOR_HELD_OPEN, ChannelKind.PUSH, DEVICE_TOKEN), channels, prefs=PREFS, now=NIGHT_IST
    )
    assert update.status is OutboxStatus.SENT
    assert fcm.fake.messages[-1]["message"]["data"]["kind"] == "door_held_open"


async def test_switched_off_channel_is_suppressed(channels: dict[ChannelKind, Channel]) -> None:
    prefs = PREFS.model_copy(update={"disabled": {EventKind.OWNER_ANNOUNCEMENT: {ChannelKind.SMS}}})
    update = await deliver(
        row(EventKind.OWNER_ANNOUNCEMENT, ChannelKind.SMS, "+919876543210"),
        channels,
        prefs=prefs,
        now=NOON_IST,
    )
    assert update.status is OutboxStatus.SUPPRESSED and "off" in (update.last_error or "")


async def test_invalid_phone_is_dead_lettered_before_any_request(
    channels: dict[ChannelKind, Channel], twilio: RunningFake
) -> None:
    sent_before = len(twilio.fake.messages)
    update = await deliver(row(EventKind.OTP, ChannelKind.SMS, "12345"), channels, prefs=PREFS, now=NOON_IST)
    assert update.status is OutboxStatus.DEAD and update.remove_recipient
    assert "InvalidRecipientError" in (update.last_error or "")
    assert len(twilio.fake.messages) == sent_before


async def test_missing_template_variable_is_dead_lettered(channels: dict[ChannelKind, Channel]) -> None:
    broken = row(
        EventKind.REFUND_PROCESSED, ChannelKind.EMAIL, "r@example.com", context={"recipient_name": "A"}
    )
    update = await deliver(broken, channels, prefs=PREFS, now=NOON_IST)
    assert update.status is OutboxStatus.DEAD and "undefined" in (update.last_error or "")


async def test_uninstalled_app_token_is_dead_and_removed(channels: dict[ChannelKind, Channel]) -> None:
    stale = "fQ3b:APA91b-uninstalled-app-token-000000"
    update = await deliver(
        row(EventKind.BOOKING_CONFIRMED, ChannelKind.PUSH, stale), channels, prefs=PREFS, now=NOON_IST
    )
    assert (
        update.status is OutboxStatus.DEAD
        and update.remove_recipient
        and "UNREGISTERED" in (update.last_error or "")
    )


async def test_dead_smtp_server_dead_letters_after_the_last_attempt() -> None:
    dead = EmailChannel(
        SmtpSettings(
            host="127.0.0.1",
            port=free_port(),
            security=SmtpSecurity.NONE,
            from_address="bot@studyspot.example",
        )
    )
    message = row(
        EventKind.REGISTRATION, ChannelKind.EMAIL, "late@example.com", attempts=POLICY.max_attempts - 1
    )
    async with dead:
        update = await deliver(message, {ChannelKind.EMAIL: dead}, prefs=PREFS, now=NOON_IST, policy=POLICY)
    assert update.status is OutboxStatus.DEAD and update.attempts == POLICY.max_attempts
    assert "gave up after 3 attempts" in (update.last_error or "")


async def test_unconfigured_channel_is_dead_lettered(channels: dict[ChannelKind, Channel]) -> None:
    update = await deliver(
        row(EventKind.OTP, ChannelKind.CONSOLE, "desk"), channels, prefs=PREFS, now=NOON_IST
    )
    assert update.status is OutboxStatus.DEAD and "no console channel" in (update.last_error or "")


async def test_console_channel_prints_the_message() -> None:
    out = io.StringIO()
    update = await deliver(
        row(EventKind.CO2_HIGH, ChannelKind.CONSOLE, "staff-desk", language=Language.ENGLISH),
        {ChannelKind.CONSOLE: ConsoleChannel(out)},
        prefs=PREFS,
        now=NOON_IST,
    )
    assert update.status is OutboxStatus.SENT
    printed = out.getvalue()
    assert "co2_high -> staff-desk" in printed and "1,450 ppm" in printed


def test_dedupe_key_is_stable_per_event_channel_and_recipient() -> None:
    key = dedupe_key(EventKind.BOOKING_CONFIRMED, "booking-9", ChannelKind.SMS, "+919876543210")
    assert key == dedupe_key(EventKind.BOOKING_CONFIRMED, "booking-9", ChannelKind.SMS, "+919876543210")
    assert key != dedupe_key(EventKind.BOOKING_CONFIRMED, "booking-9", ChannelKind.EMAIL, "+919876543210")
    assert key != dedupe_key(EventKind.BOOKING_CONFIRMED, "booking-9", ChannelKind.SMS, "+919876543211")
    assert key.startswith("booking_confirmed:booking-9:sms:")


async def test_rate_limited_row_waits_without_spending_an_attempt(
    channels: dict[ChannelKind, Channel], twilio: RunningFake
) -> None:
    from cloud.notifications.ratelimit import SendRateLimiter

    limiter = SendRateLimiter(recipient_limit="1/minute")
    first = row(EventKind.BOOKING_MODIFIED, ChannelKind.SMS, "+919811111111")
    second = row(EventKind.BOOKING_CANCELLED, ChannelKind.SMS, "+919811111111")
    assert (
        await deliver(first, channels, prefs=PREFS, now=NOON_IST, limiter=limiter)
    ).status is OutboxStatus.SENT
    sent_before = len(twilio.fake.messages)
    update = await deliver(second, channels, prefs=PREFS, now=NOON_IST, limiter=limiter)
    assert update.status is OutboxStatus.PENDING and update.attempts == 0
    assert update.next_attempt_at is not None and update.next_attempt_at > NOON_IST
    assert len(twilio.fake.messages) == sent_before


async def test_row_read_back_from_json_is_delivered(
    channels: dict[ChannelKind, Channel], smtp_plain: SmtpServer
) -> None:
    original = row(EventKind.WAITLIST_PROMOTED, ChannelKind.EMAIL, "json@example.com")
    stored = OutboxRow.model_validate_json(original.model_dump_json())  # as the JSONB column returns it
    assert isinstance(stored.context["starts_at"], str)
    update = await deliver(stored, channels, prefs=PREFS, now=NOON_IST)
    assert update.status is OutboxStatus.SENT
    assert "25 नव॰ 2026, 7:00 am" in body_of(smtp_plain.handler.last_to("json@example.com"), "plain")
