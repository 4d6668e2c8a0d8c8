"""Library analytics from real check-ins: occupancy, summary (no-shows, energy), forecast, best time.

Occupancy definition. A booking occupies its seat from `checked_in_at` (set by the door's check-in,
pushed by the edge) until the first check-out event of its pass at the door, else the booking's end,
else now. Each stay is cut at the library's LOCAL hour boundaries; the occupied seat-seconds of a
local hour / 3600 is that hour's "occupied seats" (a seat taken for half the hour counts 0.5).
`avg_occupied` of a (weekday, hour) cell is the sum over the `days` complete local days before today
divided by how many times that weekday-hour occurred in them (4 for each cell over 28 days), and
`occupancy_ratio` is that over the library's active seats. Hours are the library's zone's, never the
server's: a stay at 09:10 IST counts in Kolkata's 09:00 hour (03:30 UTC).
"""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from cloud.analytics import forecast as model
from cloud.analytics.jobs import HOURLY_FROM_MINUTES, hour_floor
from cloud.analytics.schemas import (
    BestTimeOut,
    BestTimeSlot,
    ForecastHour,
    ForecastOut,
    OccupancyCell,
    OccupancyOut,
    SummaryOut,
)
from cloud.audit import service as audit
from cloud.booking import timing
from cloud.catalog.models import LibraryRecord, SeatRecord
from cloud.db import platform_scope, tenant_scope
from cloud.errors import ApiError

HISTORY_DAYS = 56  # the forecast is fitted on the last 8 weeks
HOLDOUT_DAYS = 7
FORECAST_HOURS = 7 * 24
BEST_TIME_AHEAD_DAYS = 30
SUGGESTIONS = 3
BEST_TIME_CACHE_SIZE = 4096
# public best-time answers per (library, date, current local hour): the history only changes by
# the hour for this purpose, and an anonymous route must not refit 8 weeks on every page view
_best_time_cache: dict[tuple[uuid.UUID, dt.date, dt.datetime], BestTimeOut] = {}


@dataclass(frozen=True)
class Viewer:
    """Who reads: staff/owner of `tenant_id`, or a super admin (`platform`, every tenant, audited)."""

    user_id: uuid.UUID
    tenant_id: uuid.UUID | None
    platform: bool
    ip: str = ""


def scope_for(
    session: Session, viewer: Viewer, action: str, target: str, tenant_id: uuid.UUID | None = None
) -> None:
    """Scope the session to the viewer; a super admin's cross-tenant read is audited (and committed),
    under the tenant read when there is one so it shows in that tenant's audit log too."""
    if viewer.platform:
        platform_scope(session, viewer.user_id)
        audit.record(
            session, action, tenant_id=tenant_id, actor_id=viewer.user_id, target=target, ip=viewer.ip
        )
        session.commit()
        return
    if viewer.tenant_id is None:
        raise ApiError(403, "forbidden", "pick a tenant first")
    tenant_scope(session, viewer.tenant_id, viewer.user_id)


def open_library(session: Session, viewer: Viewer, library_id: uuid.UUID, action: str) -> LibraryRecord:
    """The library the viewer may read analytics of, with the session scoped; 404 otherwise."""
    if viewer.platform:
        platform_scope(session, viewer.user_id)
        library = library_in_scope(session, viewer, library_id)
        scope_for(session, viewer, action, f"library:{library_id}", library.tenant_id)
        return library
    scope_for(session, viewer, action, f"library:{library_id}")
    return library_in_scope(session, viewer, library_id)


def library_in_scope(session: Session, viewer: Viewer, library_id: uuid.UUID) -> LibraryRecord:
    library = session.get(LibraryRecord, library_id)
    if library is None or (not viewer.platform and library.tenant_id != viewer.tenant_id):
        raise ApiError(404, "not_found", "library not found")
    return library


def public_library(session: Session, library_id: uuid.UUID) -> LibraryRecord:
    """For the public best-time hint: only aggregates leave, so the read runs cross-tenant unaudited."""
    platform_scope(session)
    library = session.get(LibraryRecord, library_id)
    if library is None or library.status != "active":
        raise ApiError(404, "not_found", "library not found")
    return library


def active_seats(session: Session, library_id: uuid.UUID) -> int:
    query = select(func.count()).where(SeatRecord.library_id == library_id, SeatRecord.status == "active")
    return int(session.scalar(query) or 0)


# --- occupancy ---------------------------------------------------------------------------------------

_OCCUPIED_SECONDS = text(
    """
WITH outs AS (
  SELECT ev.payload->>'pass_id' AS pass_id, ev.occurred_at AS at FROM edge_events ev
  WHERE ev.library_id = :library AND ev.kind IN ('checkin', 'checkout')
    AND coalesce(ev.payload->>'direction', CASE WHEN ev.kind = 'checkout' THEN 'out' ELSE 'in' END) = 'out'
    AND ev.occurred_at > CAST(:since AS timestamptz) - interval '1 day' AND ev.payload->>'pass_id' IS NOT NULL
),
stays AS (
  SELECT greatest(b.checked_in_at, :since) AS s,
         least(upper(b.during), coalesce(min(outs.at), 'infinity'), CAST(:until AS timestamptz)) AS e
  FROM bookings b LEFT JOIN outs ON outs.pass_id = b.pass_id AND outs.at > b.checked_in_at
  WHERE b.library_id = :library AND b.checked_in_at IS NOT NULL
    AND b.status IN ('checked_in', 'completed')
    AND b.checked_in_at < :until AND upper(b.during) > :since
    -- a stay lasts at most a day (+ the early check-in window): lets the index bound the scan
    AND b.checked_in_at >= CAST(:since AS timestamptz) - interval '2 days'
  GROUP BY b.id, b.checked_in_at, b.during
),
cut AS (
  SELECT h, greatest(s, h) AS s, least(e, h + interval '1 hour') AS e
  FROM stays, generate_series(date_trunc('hour', s, :tz), e, interval '1 hour') AS h
  WHERE e > s
)
SELECT h, sum(extract(epoch FROM e - s)) AS seconds FROM cut WHERE e > s GROUP BY h
"""
)


def occupied_by_hour(
    session: Session, library: LibraryRecord, since: dt.datetime, until: dt.datetime
) -> dict[dt.datetime, float]:
    """Occupied seats (seat-hours) of every local hour in [since, until) that had anyone in it,
    keyed by the hour's start in UTC."""
    params = {"library": library.id, "since": since, "until": until, "tz": library.timezone}
    return {
        row.h.astimezone(dt.UTC): float(row.seconds) / 3600.0
        for row in session.execute(_OCCUPIED_SECONDS, params)
    }


def local_days_window(tz: zoneinfo.ZoneInfo, days: int, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """[local midnight `days` days ago, local midnight today): the last `days` complete local days."""
    today = timing.local_date(now, tz)
    return (
        timing.local_instant(today - dt.timedelta(days=days), "00:00", tz),
        timing.local_instant(today, "00:00", tz),
    )


def occupancy(session: Session, library: LibraryRecord, days: int, now: dt.datetime) -> OccupancyOut:
    tz = timing.zone_of(library.timezone)
    seats = active_seats(session, library.id)
    since, until = local_days_window(tz, days, now)
    occupied = occupied_by_hour(session, library, since, until)
    totals: dict[model.SlotKey, float] = defaultdict(float)
    occurrences: dict[model.SlotKey, int] = defaultdict(int)
    for start in model.local_hours(since, until, tz):
        key = model.slot_of(start, tz)
        totals[key] += occupied.get(start.astimezone(dt.UTC), 0.0)
        occurrences[key] += 1
    cells = []
    for weekday in range(7):
        for hour in range(24):
            count = occurrences.get((weekday, hour), 0)
            average = totals[(weekday, hour)] / count if count else 0.0
            ratio = round(average / seats, 4) if seats else 0.0
            cells.append(
                OccupancyCell(
                    weekday=weekday, hour=hour, avg_occupied=round(average, 3), occupancy_ratio=ratio
                )
            )
    return OccupancyOut(library_id=library.id, timezone=library.timezone, seats=seats, days=days, cells=cells)


# --- summary ---------------------------------------------------------------------------------------

_BOOKING_COUNTS = text(
    """
SELECT count(*) FILTER (WHERE status IN ('confirmed', 'checked_in', 'completed', 'no_show')) AS bookings,
       count(*) FILTER (WHERE status = 'no_show') AS no_shows,
       count(*) FILTER (WHERE checked_in_at IS NOT NULL AND status IN ('checked_in', 'completed')) AS attended
FROM bookings WHERE library_id = :library AND lower(during) >= :since AND lower(during) < :until
"""
)
_CHECKINS_SINCE = text(
    "SELECT count(*) FROM bookings WHERE library_id = :library AND checked_in_at >= :since"
    " AND checked_in_at < :until"
)
_ROLLED_ENERGY = text(
    """
SELECT coalesce(sum(increase), 0) AS kwh, max(hour) AS last_hour, count(*) AS hours FROM telemetry_hourly
WHERE library_id = :library AND metric = 'energy' AND hour >= :since AND hour < :until
"""
)
_LIVE_ENERGY = text(
    f"SELECT coalesce(sum(increase), 0) AS kwh, count(*) AS hours FROM ({HOURLY_FROM_MINUTES}) live"  # noqa: S608 - module constant
)


def energy_kwh(
    session: Session, library_id: uuid.UUID, since: dt.datetime, until: dt.datetime
) -> float | None:
    """kWh the library's meters counted in [since's hour, until): rolled-up hours, then the minutes
    after the last rolled-up hour (not rolled up yet). None when no meter reported at all."""
    start = hour_floor(since)
    rolled = session.execute(_ROLLED_ENERGY, {"library": library_id, "since": start, "until": until}).one()
    boundary = rolled.last_hour + model.HOUR if rolled.last_hour is not None else start
    params = {"since": boundary, "until": until, "library": library_id, "metric": "energy"}
    live = session.execute(_LIVE_ENERGY, params).one() if boundary < until else None
    if not rolled.hours and (live is None or not live.hours):
        return None
    return float(rolled.kwh) + (float(live.kwh) if live is not None else 0.0)


def summary(session: Session, library: LibraryRecord, days: int, now: dt.datetime) -> SummaryOut:
    tz = timing.zone_of(library.timezone)
    since = now - dt.timedelta(days=days)
    counts = session.execute(_BOOKING_COUNTS, {"library": library.id, "since": since, "until": now}).one()
    today = timing.local_instant(timing.local_date(now, tz), "00:00", tz)
    checkins_today = session.execute(
        _CHECKINS_SINCE, {"library": library.id, "since": today, "until": now}
    ).scalar_one()
    seat_hours = sum(occupied_by_hour(session, library, since, now).values())
    kwh = energy_kwh(session, library.id, since, now)
    resolved = int(counts.no_shows) + int(counts.attended)
    return SummaryOut(
        library_id=library.id,
        days=days,
        bookings=int(counts.bookings),
        no_shows=int(counts.no_shows),
        no_show_rate=round(int(counts.no_shows) / resolved, 4) if resolved else 0.0,
        checkins_today=int(checkins_today),
        occupied_seat_hours=round(seat_hours, 3),
        energy_kwh=round(kwh or 0.0, 3),
        kwh_per_occupied_seat_hour=round(kwh / seat_hours, 4) if kwh is not None and seat_hours > 0 else None,
    )


# --- forecast and best time ------------------------------------------------------------------------


def history(session: Session, library: LibraryRecord, now: dt.datetime) -> list[model.Observation]:
    """Every local hour of the last HISTORY_DAYS complete local days, empty hours included."""
    tz = timing.zone_of(library.timezone)
    since, until = local_days_window(tz, HISTORY_DAYS, now)
    occupied = occupied_by_hour(session, library, since, until)
    return [
        model.Observation(start, occupied.get(start.astimezone(dt.UTC), 0.0))
        for start in model.local_hours(since, until, tz)
    ]


def forecast(session: Session, library: LibraryRecord, now: dt.datetime) -> ForecastOut:
    tz = timing.zone_of(library.timezone)
    seats = active_seats(session, library.id)
    observed = history(session, library, now)
    score = model.holdout_score(observed, tz, holdout_days=HOLDOUT_DAYS)
    profile = model.fit_profile(observed, tz)
    first = model.local_hour_start(now, tz)
    hours = [
        _forecast_hour(start, profile.predict(start), seats)
        for start in model.local_hours(first, first + FORECAST_HOURS * model.HOUR, tz)
    ]
    return ForecastOut(
        library_id=library.id, timezone=library.timezone, generated_at=now.astimezone(tz),
        model=model.MODEL_NAME, holdout_days=score.days, holdout_mae=round(score.mae, 4),
        holdout_mape=round(score.mape, 2) if score.mape is not None else None, hours=hours,
    )  # fmt: skip


def _forecast_hour(start: dt.datetime, expected: float, seats: int) -> ForecastHour:
    ratio = min(expected / seats, 1.0) if seats else 0.0
    return ForecastHour(start=start, expected_occupied=round(expected, 3), expected_ratio=round(ratio, 4))


def best_time(session: Session, library: LibraryRecord, day: dt.date | None, now: dt.datetime) -> BestTimeOut:
    """The quietest open hours of local date `day` (default today) by the forecast (cached per hour)."""
    tz = timing.zone_of(library.timezone)
    today = timing.local_date(now, tz)
    day = day or today
    if day < today or day > today + dt.timedelta(days=BEST_TIME_AHEAD_DAYS):
        raise ApiError(
            422, "date_out_of_range", f"pick a date from today to {BEST_TIME_AHEAD_DAYS} days ahead",
            {"today": today.isoformat()},
        )  # fmt: skip
    key = (library.id, day, model.local_hour_start(now, tz))
    cached = _best_time_cache.get(key)
    if cached is None:
        if len(_best_time_cache) >= BEST_TIME_CACHE_SIZE:
            _best_time_cache.clear()
        cached = _best_time_cache[key] = _best_time(session, library, day, now)
    return cached


def _best_time(session: Session, library: LibraryRecord, day: dt.date, now: dt.datetime) -> BestTimeOut:
    tz = timing.zone_of(library.timezone)
    today = timing.local_date(now, tz)
    window = timing.opening_window(library.opening_hours or {}, library.closures or [], day, tz)
    out = BestTimeOut(library_id=library.id, timezone=library.timezone, date=day, suggestions=[], hint="")
    if window is None:
        out.hint = "The library is closed on that day."
        return out
    opens = max(window[0], model.local_hour_start(now, tz)) if day == today else window[0]
    starts = list(model.local_hours(model.local_hour_start(opens, tz), window[1], tz))
    if not starts:
        out.hint = "The library has closed for today."
        return out
    seats = active_seats(session, library.id)
    profile = model.fit_profile(history(session, library, now), tz)
    slots = [_forecast_hour(start, profile.predict(start), seats) for start in starts]
    quietest = sorted(slots, key=lambda slot: (slot.expected_ratio, slot.start))[:SUGGESTIONS]
    out.suggestions = [
        BestTimeSlot(start=slot.start, end=_hour_end(slot.start), expected_ratio=slot.expected_ratio)
        for slot in sorted(quietest, key=lambda slot: slot.start)
    ]
    out.hint = _hint(quietest[0], profile.empty)
    return out


def _hint(quietest: ForecastHour, no_history: bool) -> str:
    if no_history:
        return "No visits recorded yet: every hour should be quiet."
    share = round(quietest.expected_ratio * 100)
    span = f"{quietest.start:%H:%M}-{_hour_end(quietest.start):%H:%M}"
    return f"Quietest {span} (about {share}% of seats taken)."


def _hour_end(start: dt.datetime) -> dt.datetime:
    """The end of the local hour starting at `start`, in the same zone (absolute +1 h)."""
    return (start.astimezone(dt.UTC) + model.HOUR).astimezone(start.tzinfo)
