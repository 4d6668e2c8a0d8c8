"""Local-time arithmetic for a library: opening windows in its zone, converted to UTC.

Every datetime returned is timezone-aware UTC. Local wall times are resolved with zoneinfo, so a
window on a DST-change day has its real length.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Mapping, Sequence
from typing import Any

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
UTC = dt.UTC


def zone_of(name: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(name)


def local_instant(day: dt.date, hhmm: str, tz: zoneinfo.ZoneInfo) -> dt.datetime:
    """`day` at `hhmm` ("24:00" = the next midnight) in `tz`, as UTC."""
    if hhmm == "24:00":
        day, hhmm = day + dt.timedelta(days=1), "00:00"
    hour, minute = (int(part) for part in hhmm.split(":"))
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=tz).astimezone(UTC)


def is_closed_on(closures: Sequence[Mapping[str, Any]], day: dt.date) -> bool:
    return any(entry.get("date") == day.isoformat() for entry in closures)


def opening_window(
    hours: Mapping[str, Any], closures: Sequence[Mapping[str, Any]], day: dt.date, tz: zoneinfo.ZoneInfo
) -> tuple[dt.datetime, dt.datetime] | None:
    """The [open, close) window of local date `day`, or None when closed that day."""
    if is_closed_on(closures, day):
        return None
    spec = hours.get(WEEKDAYS[day.weekday()])
    if not spec:
        return None
    return local_instant(day, spec["open"], tz), local_instant(day, spec["close"], tz)


def local_date(moment: dt.datetime, tz: zoneinfo.ZoneInfo) -> dt.date:
    return moment.astimezone(tz).date()


def in_zone(moment: dt.datetime | None, tz: zoneinfo.ZoneInfo) -> dt.datetime | None:
    return None if moment is None else moment.astimezone(tz)


def to_utc(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(UTC)


def open_span(
    hours: Mapping[str, Any], closures: Sequence[Mapping[str, Any]], day: dt.date, tz: zoneinfo.ZoneInfo
) -> tuple[dt.datetime, dt.datetime] | None:
    """Like `opening_window`, but a day that closes at midnight runs on into the next day's window
    when that one opens at midnight (a 24-hour library can be booked across midnight)."""
    window = opening_window(hours, closures, day, tz)
    if window is None:
        return None
    following = opening_window(hours, closures, day + dt.timedelta(days=1), tz)
    if following is not None and following[0] == window[1]:
        return window[0], following[1]
    return window
