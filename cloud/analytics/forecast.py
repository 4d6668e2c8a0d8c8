"""Seasonal occupancy forecast: a weekday x hour profile with exponentially weighted weeks.

The model: the expected occupancy of a local (weekday, hour) is the weighted mean of that slot's
observations, a week `k` weeks older than the newest observation weighing `0.5 ** (k / half_life)`.
So recent weeks dominate while one odd week (a holiday) does not swing the forecast. It is fitted
in pure Python (168 slots x a few weeks of hours: microseconds of work, no numpy needed).

Its error is stated on held-out data: the last `holdout_days` of history are removed, the model is
fitted on the rest and scored on them (MAE in seats; MAPE in percent over hours with occupancy).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)
WEEK = dt.timedelta(weeks=1)
HALF_LIFE_WEEKS = 2.0
MODEL_NAME = (
    f"weekday-hour seasonal profile, exponentially weighted weeks (half-life {HALF_LIFE_WEEKS:g} weeks)"
)

SlotKey = tuple[int, int]  # (weekday Mon=0, local hour)


@dataclass(frozen=True)
class Observation:
    """Occupied seats (seat-hours in the hour) of the local hour starting at `start` (aware)."""

    start: dt.datetime
    value: float


def slot_of(start: dt.datetime, tz: zoneinfo.ZoneInfo) -> SlotKey:
    local = start.astimezone(tz)
    return local.weekday(), local.hour


def local_hours(start: dt.datetime, end: dt.datetime, tz: zoneinfo.ZoneInfo) -> Iterator[dt.datetime]:
    """Start of every local hour in [start, end), in `tz` (`start` must be a local hour start).

    Steps in absolute time, so a zone with a half-hour offset (Asia/Kolkata) stays on its own hours.
    """
    moment = start.astimezone(dt.UTC)
    end_utc = end.astimezone(dt.UTC)
    while moment < end_utc:
        yield moment.astimezone(tz)
        moment += HOUR


def local_hour_start(moment: dt.datetime, tz: zoneinfo.ZoneInfo) -> dt.datetime:
    return moment.astimezone(tz).replace(minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class SeasonalProfile:
    tz: zoneinfo.ZoneInfo
    levels: dict[SlotKey, float]

    def predict(self, start: dt.datetime) -> float:
        return self.levels.get(slot_of(start, self.tz), 0.0)

    @property
    def empty(self) -> bool:
        return not self.levels


def fit_profile(
    history: Sequence[Observation], tz: zoneinfo.ZoneInfo, *, half_life_weeks: float = HALF_LIFE_WEEKS
) -> SeasonalProfile:
    if not history:
        return SeasonalProfile(tz, {})
    newest = max(observation.start for observation in history)
    decay = 0.5 ** (1.0 / half_life_weeks)
    sums: dict[SlotKey, float] = defaultdict(float)
    weights: dict[SlotKey, float] = defaultdict(float)
    for observation in history:
        weeks_ago = (newest - observation.start) // WEEK
        weight = decay**weeks_ago
        key = slot_of(observation.start, tz)
        sums[key] += weight * observation.value
        weights[key] += weight
    return SeasonalProfile(tz, {key: sums[key] / weights[key] for key in sums})


@dataclass(frozen=True)
class HoldoutScore:
    days: int
    mae: float
    mape: float | None  # percent; None when no held-out hour had anyone in it
    hours: int


def holdout_score(
    history: Sequence[Observation], tz: zoneinfo.ZoneInfo, *, holdout_days: int = 7
) -> HoldoutScore:
    """Fit on all but the last `holdout_days` of `history` and score the forecast on those days."""
    if not history:
        return HoldoutScore(holdout_days, 0.0, None, 0)
    cutoff = max(observation.start for observation in history) + HOUR - holdout_days * DAY
    training = [observation for observation in history if observation.start < cutoff]
    held_out = [observation for observation in history if observation.start >= cutoff]
    profile = fit_profile(training, tz)
    errors = [abs(profile.predict(o.start) - o.value) for o in held_out]
    relative = [abs(profile.predict(o.start) - o.value) / o.value for o in held_out if o.value > 0]
    mae = sum(errors) / len(errors) if errors else 0.0
    mape = 100.0 * sum(relative) / len(relative) if relative else None
    return HoldoutScore(holdout_days, mae, mape, len(held_out))
