"""Quiet hours in the library's zone, per-kind channel switches, urgency and expiry."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.notifications.kinds import ChannelKind, EventKind
from cloud.notifications.preferences import Action, NotificationPreferences, QuietHours, should_send_now

NIGHT = QuietHours(start=dt.time(22, 0), end=dt.time(7, 0))
KOLKATA = "Asia/Kolkata"


def at_kolkata(hour: int, minute: int = 0, day: int = 24) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30)))


def prefs(**changes: object) -> NotificationPreferences:
    return NotificationPreferences(quiet_hours=NIGHT).model_copy(update=changes)


def test_outside_quiet_hours_sends() -> None:
    decision = should_send_now(EventKind.PAYMENT_SUCCEEDED, ChannelKind.SMS, prefs(), at_kolkata(12), KOLKATA)
    assert decision.action is Action.SEND


def test_late_evening_waits_until_seven_next_morning() -> None:
    decision = should_send_now(
        EventKind.INVOICE_READY, ChannelKind.PUSH, prefs(), at_kolkata(23, 15), KOLKATA
    )
    assert decision.action is Action.DEFER
    assert decision.defer_until == dt.datetime(2026, 11, 25, 1, 30, tzinfo=dt.UTC)  # 07:00 IST


def test_early_morning_waits_until_seven_same_day() -> None:
    decision = should_send_now(EventKind.INVOICE_READY, ChannelKind.PUSH, prefs(), at_kolkata(5), KOLKATA)
    assert decision.defer_until == dt.datetime(2026, 11, 24, 1, 30, tzinfo=dt.UTC)


def test_quiet_hours_use_the_library_zone_not_utc() -> None:
    now = dt.datetime(2026, 11, 24, 17, 0, tzinfo=dt.UTC)  # 22:30 in Kolkata, 17:00 in London
    assert (
        should_send_now(EventKind.REGISTRATION, ChannelKind.SMS, prefs(), now, KOLKATA).action is Action.DEFER
    )
    assert (
        should_send_now(EventKind.REGISTRATION, ChannelKind.SMS, prefs(), now, "Europe/London").action
        is Action.SEND
    )


@pytest.mark.parametrize(
    "kind", [EventKind.OTP, EventKind.DOOR_FORCED, EventKind.DOOR_HELD_OPEN, EventKind.LOCK_NOT_RESPONDING]
)
def test_otp_and_door_alerts_ignore_quiet_hours(kind: EventKind) -> None:
    assert should_send_now(kind, ChannelKind.SMS, prefs(), at_kolkata(2), KOLKATA).action is Action.SEND


def test_switched_off_channel_suppresses_only_that_kind() -> None:
    choice = prefs(disabled={EventKind.OWNER_ANNOUNCEMENT: {ChannelKind.SMS}})
    now = at_kolkata(12)
    assert (
        should_send_now(EventKind.OWNER_ANNOUNCEMENT, ChannelKind.SMS, choice, now, KOLKATA).action
        is Action.SUPPRESS
    )
    assert (
        should_send_now(EventKind.OWNER_ANNOUNCEMENT, ChannelKind.EMAIL, choice, now, KOLKATA).action
        is Action.SEND
    )
    assert (
        should_send_now(EventKind.PAYMENT_FAILED, ChannelKind.SMS, choice, now, KOLKATA).action is Action.SEND
    )


def test_otp_cannot_be_switched_off() -> None:
    choice = prefs(disabled={EventKind.OTP: {ChannelKind.SMS}}, disabled_everywhere={ChannelKind.SMS})
    assert (
        should_send_now(EventKind.OTP, ChannelKind.SMS, choice, at_kolkata(12), KOLKATA).action is Action.SEND
    )


def test_unsubscribed_everywhere_stops_optional_mail() -> None:
    choice = prefs(disabled_everywhere={ChannelKind.EMAIL})
    decision = should_send_now(
        EventKind.BOOKING_CONFIRMED, ChannelKind.EMAIL, choice, at_kolkata(12), KOLKATA
    )
    assert decision.action is Action.SUPPRESS and "email" in decision.reason


def test_reminder_that_would_arrive_after_the_start_is_dropped() -> None:
    now = at_kolkata(6, 0)
    starts = at_kolkata(6, 30)
    decision = should_send_now(
        EventKind.BOOKING_REMINDER, ChannelKind.PUSH, prefs(), now, KOLKATA, expires_at=starts
    )
    assert decision.action is Action.SUPPRESS
    later = at_kolkata(9, 0)
    decision = should_send_now(
        EventKind.BOOKING_REMINDER, ChannelKind.PUSH, prefs(), now, KOLKATA, expires_at=later
    )
    assert decision.action is Action.DEFER


def test_quiet_hours_ending_in_a_dst_gap_resolve_to_a_real_instant() -> None:
    # London skips 01:00-02:00 local on 2026-03-29, so the 01:30 end of this window never happens.
    quiet = prefs(quiet_hours=QuietHours(start=dt.time(0, 30), end=dt.time(1, 30)))
    now = dt.datetime(2026, 3, 29, 0, 45, tzinfo=dt.UTC)  # 00:45 GMT, inside the window
    decision = should_send_now(EventKind.REGISTRATION, ChannelKind.EMAIL, quiet, now, "Europe/London")
    assert decision.action is Action.DEFER
    assert decision.defer_until == dt.datetime(2026, 3, 29, 1, 30, tzinfo=dt.UTC)  # = 02:30 BST


def test_no_quiet_hours_configured_sends_at_night() -> None:
    decision = should_send_now(
        EventKind.INVOICE_READY, ChannelKind.EMAIL, NotificationPreferences(), at_kolkata(3), KOLKATA
    )
    assert decision.action is Action.SEND


def test_naive_now_is_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        should_send_now(EventKind.OTP, ChannelKind.SMS, prefs(), dt.datetime(2026, 1, 1), KOLKATA)


@settings(max_examples=300, deadline=None)
@given(
    start=st.times(),
    end=st.times(),
    now=st.datetimes(
        min_value=dt.datetime(2026, 1, 1), max_value=dt.datetime(2027, 12, 31), timezones=st.just(dt.UTC)
    ),
    zone=st.sampled_from(["Asia/Kolkata", "Europe/London", "America/New_York", "Australia/Lord_Howe"]),
)
def test_deferral_always_lands_outside_the_window_within_a_day(
    start: dt.time, end: dt.time, now: dt.datetime, zone: str
) -> None:
    quiet = NotificationPreferences(quiet_hours=QuietHours(start=start, end=end))
    decision = should_send_now(EventKind.REGISTRATION, ChannelKind.EMAIL, quiet, now, zone)
    if decision.action is Action.SEND:
        assert not QuietHours(start=start, end=end).contains(now.astimezone(ZoneInfo(zone)).time())
        return
    assert decision.action is Action.DEFER and decision.defer_until is not None
    assert now < decision.defer_until <= now + dt.timedelta(hours=26)
