"""The seasonal forecast on synthetic series: it recovers a weekly pattern, and its stated error is
measured on the held-out days only."""

from __future__ import annotations

import datetime as dt
import random
import zoneinfo

from cloud.analytics import forecast as model

KOLKATA = zoneinfo.ZoneInfo("Asia/Kolkata")
START = dt.datetime(2026, 9, 7, tzinfo=KOLKATA)  # a Monday, local midnight


def weekly_pattern(weekday: int, hour: int) -> float:
    if weekday < 5:
        return 30.0 if 8 <= hour < 13 else 18.0 if 16 <= hour < 21 else 2.0
    return 12.0 if 9 <= hour < 18 else 1.0


def series(weeks: int, value: object, start: dt.datetime = START) -> list[model.Observation]:
    hours = model.local_hours(start, start + dt.timedelta(weeks=weeks), KOLKATA)
    return [model.Observation(hour, value(hour)) for hour in hours]  # type: ignore[operator]


def test_local_hours_follow_the_zone_not_utc() -> None:
    hours = list(model.local_hours(START, START + dt.timedelta(hours=3), KOLKATA))
    assert [hour.strftime("%H:%M%z") for hour in hours] == ["00:00+0530", "01:00+0530", "02:00+0530"]
    assert hours[0].astimezone(dt.UTC).minute == 30
    assert model.slot_of(hours[0], KOLKATA) == (0, 0)


def test_fit_recovers_a_noisy_weekly_pattern() -> None:
    rng = random.Random(3)
    history = series(8, lambda hour: weekly_pattern(hour.weekday(), hour.hour) + rng.uniform(-1.0, 1.0))
    profile = model.fit_profile(history, KOLKATA)
    next_week = START + dt.timedelta(weeks=8)
    errors = [
        abs(profile.predict(hour) - weekly_pattern(hour.weekday(), hour.hour))
        for hour in model.local_hours(next_week, next_week + dt.timedelta(weeks=1), KOLKATA)
    ]
    assert len(errors) == 168
    assert max(errors) < 1.0 and sum(errors) / len(errors) < 0.35


def test_recent_weeks_weigh_more() -> None:
    history = series(4, lambda hour: 10.0) + series(1, lambda hour: 20.0, START + dt.timedelta(weeks=4))
    level = model.fit_profile(history, KOLKATA).predict(START)
    # half-life 2 weeks: weights 1 (newest), 0.71, 0.5, 0.35, 0.25 -> (20 + 10 * 1.81) / 2.81
    assert 13.5 < level < 13.6


def test_holdout_error_is_measured_on_the_held_out_week_only() -> None:
    # 4 weeks at a flat 2 seats, then a last week at 5: a model fitted without the last week
    # predicts 2 there, so the held-out MAE is exactly 3 and the MAPE 60 %
    history = series(4, lambda hour: 2.0) + series(1, lambda hour: 5.0, START + dt.timedelta(weeks=4))
    score = model.holdout_score(history, KOLKATA, holdout_days=7)
    assert score.hours == 7 * 24
    assert score.mae == 3.0
    assert score.mape is not None and abs(score.mape - 60.0) < 1e-9


def test_a_perfectly_periodic_series_has_no_holdout_error() -> None:
    history = series(5, lambda hour: weekly_pattern(hour.weekday(), hour.hour))
    score = model.holdout_score(history, KOLKATA)
    assert score.mae == 0.0 and score.mape == 0.0


def test_no_history_gives_a_zero_forecast_and_no_mape() -> None:
    score = model.holdout_score([], KOLKATA)
    assert (score.mae, score.mape) == (0.0, None)
    assert model.fit_profile([], KOLKATA).predict(START) == 0.0
    empty_week = series(2, lambda hour: 0.0)
    assert model.holdout_score(empty_week, KOLKATA).mape is None
