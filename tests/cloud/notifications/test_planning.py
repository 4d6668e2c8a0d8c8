"""Rows a business event writes: channels by default and preference, addresses validated, dedupe keys."""

from __future__ import annotations

import datetime as dt
import uuid

from cloud.notifications.kinds import ChannelKind, EventKind, Language
from cloud.notifications.planning import RecipientProfile, plan_rows
from cloud.notifications.preferences import NotificationPreferences
from cloud.notifications.samples import SAMPLE_CONTEXTS

NOW = dt.datetime(2026, 11, 24, 6, 30, tzinfo=dt.UTC)
TENANT = uuid.uuid4()
TOKEN = "dXk3nq0Zl0E:APA91bH-registered-device-token-0001"


def plan(kind: EventKind, recipient: RecipientProfile, **options: object) -> list:
    return plan_rows(
        kind,
        "subject-1",
        recipient,
        SAMPLE_CONTEXTS[kind],
        tenant_id=TENANT,
        library_id=None,
        library_tz="Asia/Kolkata",
        now=NOW,
        **options,  # type: ignore[arg-type]
    )


def member(**changes: object) -> RecipientProfile:
    base = RecipientProfile(
        user_id=uuid.uuid4(),
        email="Priya@Example.com",
        phone="98765 43210",
        device_tokens=[TOKEN],
        prefs=NotificationPreferences(language=Language.HINDI),
    )
    return base.model_copy(update=changes)


def test_routine_member_event_goes_to_email_and_push_in_their_language() -> None:
    rows = plan(EventKind.BOOKING_CONFIRMED, member())
    assert {(r.channel, r.recipient) for r in rows} == {
        (ChannelKind.EMAIL, "Priya@example.com"),
        (ChannelKind.PUSH, TOKEN),
    }
    assert all(r.language is Language.HINDI and r.next_attempt_at == NOW for r in rows)


def test_pressing_event_adds_sms_and_whatsapp_only_with_opt_in() -> None:
    without = {r.channel for r in plan(EventKind.PAYMENT_FAILED, member())}
    with_opt_in = {r.channel for r in plan(EventKind.PAYMENT_FAILED, member(whatsapp_opt_in=True))}
    assert ChannelKind.SMS in without and ChannelKind.WHATSAPP not in without
    assert ChannelKind.WHATSAPP in with_opt_in
    sms = next(r for r in plan(EventKind.PAYMENT_FAILED, member()) if r.channel is ChannelKind.SMS)
    assert sms.recipient == "+919876543210"


def test_switched_off_channels_and_bad_addresses_write_no_rows() -> None:
    prefs = NotificationPreferences(disabled={EventKind.BOOKING_CONFIRMED: {ChannelKind.PUSH}})
    rows = plan(EventKind.BOOKING_CONFIRMED, member(prefs=prefs, email="not-an-email"))
    assert rows == []


def test_otp_goes_by_sms_even_when_switched_off() -> None:
    prefs = NotificationPreferences(disabled_everywhere={ChannelKind.SMS})
    rows = plan(EventKind.OTP, member(prefs=prefs))
    assert [r.channel for r in rows] == [ChannelKind.SMS]


def test_one_row_per_device_and_stable_dedupe_keys() -> None:
    second = "eYk3nq0Zl0E:APA91bH-registered-device-token-0002"
    recipient = member(device_tokens=[TOKEN, second])
    rows = plan(EventKind.DOOR_FORCED, recipient, channels=[ChannelKind.PUSH])
    assert [r.recipient for r in rows] == [TOKEN, second]
    again = plan(EventKind.DOOR_FORCED, recipient, channels=[ChannelKind.PUSH])
    assert [r.dedupe_key for r in rows] == [r.dedupe_key for r in again]
    assert len({r.dedupe_key for r in rows}) == 2
