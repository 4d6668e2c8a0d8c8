"""Per-channel and per-recipient send budgets, in memory and in a real Redis shared by two workers."""

from __future__ import annotations

import datetime as dt

from cloud.notifications.kinds import ChannelKind
from cloud.notifications.ratelimit import SendRateLimiter


async def test_recipient_budget_refuses_with_a_wait_and_spares_others() -> None:
    limiter = SendRateLimiter(recipient_limit="2/minute")
    assert await limiter.acquire(ChannelKind.SMS, "+919876543210") is None
    assert await limiter.acquire(ChannelKind.SMS, "+919876543210") is None
    wait = await limiter.acquire(ChannelKind.SMS, "+919876543210")
    assert wait is not None and dt.timedelta(0) < wait <= dt.timedelta(minutes=1)
    assert await limiter.acquire(ChannelKind.SMS, "+919812345678") is None
    assert await limiter.acquire(ChannelKind.EMAIL, "+919876543210") is None  # budgets are per channel


async def test_channel_budget_is_shared_by_all_recipients() -> None:
    limiter = SendRateLimiter(channel_limits={ChannelKind.WHATSAPP: "3/minute"}, recipient_limit="100/minute")
    results = [await limiter.acquire(ChannelKind.WHATSAPP, f"+9198765432{i:02d}") for i in range(4)]
    assert results[:3] == [None, None, None] and results[3] is not None


async def test_refused_send_takes_nothing_from_the_channel_budget() -> None:
    limiter = SendRateLimiter(channel_limits={ChannelKind.SMS: "2/minute"}, recipient_limit="1/minute")
    assert await limiter.acquire(ChannelKind.SMS, "+919876543210") is None
    assert await limiter.acquire(ChannelKind.SMS, "+919876543210") is not None  # recipient budget spent
    assert await limiter.acquire(ChannelKind.SMS, "+919812345678") is None  # channel still had room


async def test_two_workers_share_one_budget_through_redis(limits_redis_uri: str) -> None:
    first = SendRateLimiter(limits_redis_uri, channel_limits={ChannelKind.PUSH: "3/minute"})
    second = SendRateLimiter(limits_redis_uri, channel_limits={ChannelKind.PUSH: "3/minute"})
    outcomes = [
        await worker.acquire(ChannelKind.PUSH, f"device-token-number-{i:04d}")
        for i, worker in enumerate([first, second, first, second])
    ]
    await first.aclose()
    await second.aclose()
    assert outcomes[:3] == [None, None, None] and outcomes[3] is not None
