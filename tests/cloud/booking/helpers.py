"""Time helpers for booking tests: local wall times of the test library turned into ISO strings."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

from tests.cloud.booking.conftest import LIBRARY_TZ

TZ = zoneinfo.ZoneInfo(LIBRARY_TZ)
ALL_DAY = {
    day: {"open": "00:00", "close": "24:00"} for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
}


def local_day(days_ahead: int) -> dt.date:
    return dt.datetime.now(TZ).date() + dt.timedelta(days=days_ahead)


def at(days_ahead: int, hhmm: str) -> dt.datetime:
    hour, minute = (int(x) for x in hhmm.split(":"))
    return dt.datetime.combine(local_day(days_ahead), dt.time(hour, minute), tzinfo=TZ)


def slot(days_ahead: int, start: str, end: str, *, utc: bool = False) -> dict[str, str]:
    begin, finish = at(days_ahead, start), at(days_ahead, end)
    if utc:
        begin, finish = begin.astimezone(dt.UTC), finish.astimezone(dt.UTC)
    return {"start": begin.isoformat(), "end": finish.isoformat()}


def now_slot(minutes: int = 60) -> dict[str, str]:
    start = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    return {"start": start.isoformat(), "end": (start + dt.timedelta(minutes=minutes)).isoformat()}


def hourly(setup: Any, seat: str, times: dict[str, str], plan: str = "Hourly") -> dict[str, Any]:
    return {"plan_id": setup.plans[plan]["id"], "seat_id": setup.seat(seat)["id"], **times}
