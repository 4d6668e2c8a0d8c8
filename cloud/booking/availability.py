"""Per-seat availability of a library for a local date and window, cached per library version."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy.orm import Session

from cloud.booking import service, timing
from cloud.booking.cache import AvailabilityCache
from cloud.booking.schemas import AvailabilityOut, SeatAvailability
from cloud.errors import ApiError


def seat_availability(
    session: Session,
    cache: AvailabilityCache,
    library_id: uuid.UUID,
    day: dt.date,
    start: str | None,
    end: str | None,
) -> AvailabilityOut:
    window_key = f"{day.isoformat()}:{start or 'open'}:{end or 'close'}"
    cached = cache.get(library_id, window_key)
    if cached is not None:
        return AvailabilityOut.model_validate(cached)
    result = _compute(session, library_id, day, start, end)
    cache.put(library_id, window_key, result.model_dump(mode="json"))
    return result


def _compute(
    session: Session, library_id: uuid.UUID, day: dt.date, start: str | None, end: str | None
) -> AvailabilityOut:
    library = service.load_library(session, library_id)
    tz = timing.zone_of(library.timezone)
    window = timing.opening_window(library.opening_hours, library.closures, day, tz)
    if window is None:
        raise ApiError(422, "library_closed", f"the library is closed on {day.isoformat()}")
    lower = timing.local_instant(day, start, tz) if start else window[0]
    upper = timing.local_instant(day, end, tz) if end else window[1]
    if upper <= lower:
        raise ApiError(422, "invalid_range", "end must be after start")
    busy = service.busy_ranges(session, library.id, lower, upper)
    seats = [
        SeatAvailability(
            seat_id=seat.id,
            label=seat.label,
            zone_id=seat.zone_id,
            zone=seat.zone,
            seat_type=seat.seat_type,
            free=seat.id not in busy,
        )
        for seat in service.active_seats(session, library.id)
    ]
    return AvailabilityOut(
        library_id=library.id,
        date=day,
        timezone=library.timezone,
        start=lower.astimezone(tz),
        end=upper.astimezone(tz),
        seats=seats,
    )
