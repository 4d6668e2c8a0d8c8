"""Thin routes: recurring/multi-date booking series and the personal calendar feed."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel
from sqlalchemy.orm import Session

from cloud.booking import ics, live, series, service
from cloud.booking.cache import AvailabilityCache, get_availability_cache
from cloud.booking.models import Booking, BookingSeries, CalendarFeed
from cloud.booking.router import actor_of, booker, get_live_hub, reader
from cloud.booking.schemas import SeriesCancel, SeriesCancelOut, SeriesCreate, SeriesOut, SeriesProblem
from cloud.deps import Principal, get_session, scoped_session
from cloud.errors import ApiError
from cloud.models_common import utcnow

router = APIRouter(tags=["bookings"])


class CalendarFeedOut(BaseModel):
    url: str
    webcal_url: str
    rotated_at: str


def _series_out(
    session: Session, row: BookingSeries, bookings: list[Booking], skipped: list[SeriesProblem]
) -> SeriesOut:
    return SeriesOut(
        id=row.id,
        library_id=row.library_id,
        user_id=row.user_id,
        plan_id=row.plan_id,
        recurrence=row.recurrence,
        bookings=[service.booking_out(session, booking) for booking in bookings],
        skipped=skipped,
    )


def _announce(cache: AvailabilityCache, hub: live.LiveHub, bookings: list[Booking], event: str) -> None:
    for booking in bookings:
        cache.invalidate(booking.library_id)
        hub.publish(booking.library_id, live.seat_event(event, booking))


@router.post("/api/v1/bookings/series", status_code=201, response_model=SeriesOut)
def create_series(
    body: SeriesCreate,
    principal: Principal = Depends(booker),
    session: Session = Depends(scoped_session),
    cache: AvailabilityCache = Depends(get_availability_cache),
    hub: live.LiveHub = Depends(get_live_hub),
) -> SeriesOut:
    """Book several dates at once; all or nothing unless `partial` (see `SeriesCreate`)."""
    result = series.create_series(session, actor_of(principal), body, utcnow())
    _announce(cache, hub, result.bookings, "booked")
    return _series_out(session, result.series, result.bookings, result.skipped)


@router.get("/api/v1/bookings/series/{series_id}", response_model=SeriesOut)
def get_series(
    series_id: uuid.UUID, principal: Principal = Depends(reader), session: Session = Depends(scoped_session)
) -> SeriesOut:
    row = series.get_series(session, actor_of(principal), series_id)
    return _series_out(session, row, series.occurrences(session, row.id), [])


@router.post("/api/v1/bookings/series/{series_id}/cancel", response_model=SeriesCancelOut)
def cancel_series(
    series_id: uuid.UUID,
    body: SeriesCancel | None = None,
    principal: Principal = Depends(booker),
    session: Session = Depends(scoped_session),
    cache: AvailabilityCache = Depends(get_availability_cache),
    hub: live.LiveHub = Depends(get_live_hub),
) -> SeriesCancelOut:
    """Cancel the upcoming occurrences (from `from_date` on, local date); past-cutoff ones are kept."""
    wanted = body or SeriesCancel()
    cancelled, kept = series.cancel_series(
        session, actor_of(principal), series_id, wanted.from_date, wanted.reason, utcnow()
    )
    _announce(cache, hub, cancelled, "released")
    return SeriesCancelOut(
        series_id=series_id,
        cancelled=[service.booking_out(session, booking) for booking in cancelled],
        skipped=kept,
    )


def _feed_out(request: Request, feed: CalendarFeed) -> CalendarFeedOut:
    token = ics.feed_token(request.app.state.master_key, feed.feed_id)
    url = str(request.url_for("calendar_feed", token=token))
    return CalendarFeedOut(
        url=url, webcal_url="webcal://" + url.split("://", 1)[1], rotated_at=feed.rotated_at.isoformat()
    )


@router.get("/api/v1/users/me/calendar", response_model=CalendarFeedOut)
def my_calendar_feed(
    request: Request, principal: Principal = Depends(reader), session: Session = Depends(scoped_session)
) -> CalendarFeedOut:
    """The secret URL of the caller's bookings as an iCalendar feed (subscribe to it in a calendar app)."""
    return _feed_out(request, ics.ensure_feed(session, principal.user_id, utcnow()))


@router.post("/api/v1/users/me/calendar/rotate", response_model=CalendarFeedOut)
def rotate_calendar_feed(
    request: Request, principal: Principal = Depends(reader), session: Session = Depends(scoped_session)
) -> CalendarFeedOut:
    """A new secret URL; the old one stops working."""
    return _feed_out(request, ics.rotate_feed(session, principal.user_id, utcnow()))


@router.get("/api/v1/calendar/{token}.ics", name="calendar_feed", response_class=Response)
def calendar_feed(token: str, request: Request, session: Session = Depends(get_session)) -> Response:
    """Public by design: the token in the URL is the credential."""
    user_id = ics.feed_owner(session, request.app.state.master_key, token)
    if user_id is None:
        raise ApiError(404, "not_found", "no calendar feed at that address")
    body = ics.build_calendar(session, user_id, utcnow())
    return Response(
        body,
        media_type="text/calendar; charset=utf-8",
        headers={
            "Cache-Control": "private, max-age=300",
            "Content-Disposition": "inline; filename=bookings.ics",
        },
    )
