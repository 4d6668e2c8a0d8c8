"""Backoff schedule, dead-letter decisions and recipient validation."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from cloud.notifications.channels.base import PermanentDeliveryError, TransientDeliveryError
from cloud.notifications.kinds import ChannelKind
from cloud.notifications.recipients import InvalidRecipientError, normalize_recipient
from cloud.notifications.retry import RetryPolicy, after_failure, backoff_delay

NOW = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)
POLICY = RetryPolicy(max_attempts=5, base_delay=dt.timedelta(seconds=30), max_delay=dt.timedelta(minutes=10))


def test_ceiling_doubles_then_caps() -> None:
    ceilings = [POLICY.ceiling(attempt).total_seconds() for attempt in range(1, 8)]
    assert ceilings == [30, 60, 120, 240, 480, 600, 600]
    assert POLICY.ceiling(10_000) == dt.timedelta(minutes=10)


def test_jitter_stays_between_half_and_full_ceiling() -> None:
    rng = random.Random(7)
    for attempt in range(1, 10):
        ceiling = POLICY.ceiling(attempt)
        delays = {backoff_delay(POLICY, attempt, rng) for _ in range(50)}
        assert all(ceiling / 2 <= delay <= ceiling for delay in delays)
        assert len(delays) > 1


def test_transient_error_is_retried_later() -> None:
    verdict = after_failure(POLICY, 1, TransientDeliveryError("503"), NOW, random.Random(1))
    assert not verdict.dead_letter and verdict.retry_at is not None
    assert NOW + dt.timedelta(seconds=15) <= verdict.retry_at <= NOW + dt.timedelta(seconds=30)


def test_retry_after_from_the_provider_wins_when_longer() -> None:
    error = TransientDeliveryError("429", retry_after=dt.timedelta(minutes=5))
    verdict = after_failure(POLICY, 1, error, NOW, random.Random(1))
    assert verdict.retry_at == NOW + dt.timedelta(minutes=5)


def test_permanent_error_is_dead_at_once_with_reason() -> None:
    error = PermanentDeliveryError("number invalid", remove_recipient=True)
    verdict = after_failure(POLICY, 1, error, NOW)
    assert verdict.dead_letter and verdict.remove_recipient and "number invalid" in verdict.last_error


def test_too_many_attempts_dead_letters_with_last_error() -> None:
    verdict = after_failure(POLICY, 5, TransientDeliveryError("timeout"), NOW)
    assert verdict.dead_letter and verdict.retry_at is None
    assert "5 attempts" in verdict.last_error and "timeout" in verdict.last_error


def test_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)


@pytest.mark.parametrize(
    ("channel", "raw", "normalized"),
    [
        (ChannelKind.EMAIL, "Priya@Example.COM", "Priya@example.com"),
        (ChannelKind.SMS, "98765 43210", "+919876543210"),
        (ChannelKind.WHATSAPP, "+91 98765-43210", "+919876543210"),
        (ChannelKind.SMS, "+44 20 7946 0958", "+442079460958"),
        (ChannelKind.PUSH, " dXk3nq0Zl0E:APA91bH-token-0001 ", "dXk3nq0Zl0E:APA91bH-token-0001"),
    ],
)
def test_valid_recipients_are_normalized(channel: ChannelKind, raw: str, normalized: str) -> None:
    assert normalize_recipient(channel, raw) == normalized


@pytest.mark.parametrize(
    ("channel", "raw"),
    [
        (ChannelKind.EMAIL, "not-an-email"),
        (ChannelKind.EMAIL, "a@b"),
        (ChannelKind.SMS, "12345"),
        (ChannelKind.SMS, "call me maybe"),
        (ChannelKind.WHATSAPP, "+1 555"),
        (ChannelKind.PUSH, "x y"),
        (ChannelKind.EMAIL, "   "),
    ],
)
def test_invalid_recipients_are_typed_errors(channel: ChannelKind, raw: str) -> None:
    with pytest.raises(InvalidRecipientError):
        normalize_recipient(channel, raw)
