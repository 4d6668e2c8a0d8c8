"""Retry timing for failed sends: capped exponential backoff with equal jitter, then a dead letter."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from cloud.notifications.channels.base import DeliveryError, PermanentDeliveryError, TransientDeliveryError


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    base_delay: dt.timedelta = dt.timedelta(seconds=30)
    max_delay: dt.timedelta = dt.timedelta(hours=6)
    multiplier: float = 2.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.base_delay <= dt.timedelta(0) or self.multiplier < 1:
            raise ValueError("max_attempts >= 1, base_delay > 0 and multiplier >= 1 are required")

    def ceiling(self, attempt: int) -> dt.timedelta:
        """Largest wait after the `attempt`-th failure (1-based), before jitter."""
        exponent = min(max(attempt - 1, 0), 64)
        seconds = self.base_delay.total_seconds() * self.multiplier**exponent
        return dt.timedelta(seconds=min(seconds, self.max_delay.total_seconds()))


def backoff_delay(policy: RetryPolicy, attempt: int, rng: random.Random | None = None) -> dt.timedelta:
    """Equal jitter: uniform in [ceiling/2, ceiling]; a burst of retries spreads out yet backs off."""
    ceiling = policy.ceiling(attempt).total_seconds()
    draw = (rng or random).uniform(ceiling / 2, ceiling)
    return dt.timedelta(seconds=draw)


@dataclass(frozen=True)
class RetryDecision:
    dead_letter: bool
    retry_at: dt.datetime | None
    last_error: str
    remove_recipient: bool = False


def after_failure(
    policy: RetryPolicy,
    attempts_made: int,
    error: DeliveryError,
    now: dt.datetime,
    rng: random.Random | None = None,
) -> RetryDecision:
    """What to do with an outbox row whose `attempts_made`-th send just raised `error`."""
    reason = f"{type(error).__name__}: {error.reason}"
    if isinstance(error, PermanentDeliveryError):
        return RetryDecision(True, None, reason, remove_recipient=error.remove_recipient)
    if attempts_made >= policy.max_attempts:
        return RetryDecision(True, None, f"gave up after {attempts_made} attempts; last: {reason}")
    delay = backoff_delay(policy, attempts_made, rng)
    if isinstance(error, TransientDeliveryError) and error.retry_after is not None:
        delay = max(delay, error.retry_after)
    return RetryDecision(False, now + delay, reason)
