"""Thin routes: bookings, passes, staff confirm/check-in, seat availability."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import io
import logging
import uuid
from typing import Any

import segno
from fastapi import APIRouter, Depends, Query, Request, Response, WebSocket, WebSocketDisconnect
from redis.exceptions import RedisError
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from cloud.booking import availability, live, service, subscriptions, waitlist
from cloud.booking.cache import AvailabilityCache, get_availability_cache
from cloud.booking.models import BookingStatus
from cloud.booking.schemas import (
    AvailabilityOut,
    BookingCreate,
    BookingModify,
    BookingOut,
    BookingPage,
    CancelIn,
    PassOut,
    PauseIn,
    SubscriptionCreate,
    SubscriptionOut,
    TransferIn,
    WaitlistJoin,
    WaitlistOut,
)
from cloud.deps import Principal, get_session, require, scoped_session
from cloud.errors import ApiError
from cloud.identity.roles import Permission
from cloud.identity.tokens import TokenInvalid
from cloud.models_common import utcnow

log = logging.getLogger(__name__)

router = APIRouter(tags=["bookings"])
booker = require(Permission.WRITE_BOOKINGS)
reader = require(Permission.READ_OWN_BOOKINGS)
desk = require(Permission.WRITE_LIBRARY_DATA)
HHMM = r"^(([01]\d|2[0-3]):[0-5]\d|24:00)$"


async def get_live_hub(request: Request) -> live.LiveHub:
    return live.live_hub_for(request.app.state)  # no I/O: on the event loop, not the thread pool


def actor_of(principal: Principal) -> service.Actor:
    staff = principal.tenant_id is not None and principal.can(Permission.READ_BOOKINGS)
    return service.Actor(user_id=principal.user_id, tenant_id=principal.tenant_id, is_staff=staff)


@router.post("/api/v1/bookings", status_code=201, response_model=BookingOut)
def create_booking(
    body: BookingCreate,
    principal: Principal = Depends(booker),
    session: Session = Depends(scoped_session),
    cache: AvailabilityCache = Depends(get_availability_cache),
    hub: live.LiveHub = Depends(get_live_hub),
) -> BookingOut:
    booking = service.create_booking(session, actor_of(principal), body, utcnow())
    cache.invalidate(booking.library_id)
    hub.publish(booking.library_id, live.seat_event("booked", booking))
    return service.booking_out(session, booking)


@router.get("/api/v1/bookings", response_model=BookingPage)
def list_my_bookings(
    status: BookingStatus | None = None,
    cursor: str | None = Query(default=None, max_length=200),
    limit: int = Query(default=20, ge=1, le=100),
    principal: Principal = Depends(reader),
    session: Session = Depends(scoped_session),
) -> BookingPage:
    rows, next_cursor = service.list_my_bookings(
        session, principal.user_id, status=status.value if status else None, cursor=cursor, limit=limit
    )
    return BookingPage(items=[service.booking_out(session, row) for row in rows], next_cursor=next_cursor)


@router.get("/api/v1/bookings/{booking_id}", response_model=BookingOut)
def get_booking(
    booking_id: uuid.UUID, principal: Principal = Depends(reader), session: Session = Depends(scoped_session)
) -> BookingOut:
    return service.booking_out(session, service.get_booking(session, actor_of(principal), booking_id))


@router.patch("/api/v1/bookings/{booking_id}", response_model=BookingOut)
def modify_booking(
    booking_id: uuid.UUID,
    body: BookingModify,
    principal: Principal = Depends(booker),
    session: Session = Depends(scoped_session),
    cache: AvailabilityCache = Depends(get_availability_cache),
    hub: live.LiveHub = Depends(get_live_hub),
) -> BookingOut:
    actor = actor_of(principal)
    before = live.seat_event("released", service.get_booking(session, actor, booking_id))
    booking = service.modify_booking(session, actor, booking_id, body, utcnow())
    cache.invalidate(booking.library_id)
    after = live.seat_event("booked", booking)
    if {k: v for k, v in before.items() if k != "event"} != {k: v for k, v in after.items() if k != "event"}:
        hub.publish(booking.library_id, before)
        hub.publish(booking.library_id, after)
    return service.booking_out(session, booking)


@router.post("/api/v1/bookings/{booking_id}/cancel", response_model=BookingOut)
def cancel_booking(
    booking_id: uuid.UUID,
    body: CancelIn | None = None,
    principal: Principal = Depends(booker),
    session: Session = Depends(scoped_session),
    cache: AvailabilityCache = Depends(get_availability_cache),
    hub: live.LiveHub = Depends(get_live_hub),
) -> BookingOut:
    reason = body.reason if body else ""
    booking = service.cancel_booking(session, actor_of(principal), booking_id, reason, utcnow())
    cache.invalidate(booking.library_id)
    hub.publish(booking.library_id, live.seat_event("released", booking))
    return service.booking_out(session, booking)


@router.post("/api/v1/bookings/{booking_id}/confirm", response_model=BookingOut)
def confirm_booking(
    booking_id: uuid.UUID, principal: Principal = Depends(desk), session: Session = Depends(scoped_session)
) -> BookingOut:
    """Staff took the payment at the desk (cash): the held booking becomes confirmed."""
    service.get_booking(session, actor_of(principal), booking_id)
    return service.booking_out(session, service.confirm_booking(session, booking_id, utcnow()))


@router.post("/api/v1/bookings/{booking_id}/check-in", response_model=BookingOut)
def check_in(
    booking_id: uuid.UUID,
    principal: Principal = Depends(desk),
    session: Session = Depends(scoped_session),
    hub: live.LiveHub = Depends(get_live_hub),
) -> BookingOut:
    service.get_booking(session, actor_of(principal), booking_id)
    booking = service.check_in(session, booking_id, utcnow())
    hub.publish(booking.library_id, live.seat_event("occupied", booking))
    return service.booking_out(session, booking)


@router.get("/api/v1/bookings/{booking_id}/pass", response_model=PassOut)
def get_pass(
    booking_id: uuid.UUID,
    request: Request,
    principal: Principal = Depends(reader),
    session: Session = Depends(scoped_session),
) -> PassOut:
    issued = service.booking_pass(
        session, actor_of(principal), booking_id, request.app.state.master_key, utcnow()
    )
    return PassOut(
        booking_id=issued.booking.id,
        pass_id=issued.claims.pass_id,
        qr_payload=issued.qr_payload,
        valid_from=issued.claims.valid_from,
        valid_until=issued.claims.valid_until,
    )


@router.get("/api/v1/bookings/{booking_id}/pass.png", response_class=Response)
def get_pass_png(
    booking_id: uuid.UUID,
    request: Request,
    principal: Principal = Depends(reader),
    session: Session = Depends(scoped_session),
) -> Response:
    issued = service.booking_pass(
        session, actor_of(principal), booking_id, request.app.state.master_key, utcnow()
    )
    image = io.BytesIO()
    segno.make(issued.qr_payload, error="m", micro=False).save(image, kind="png", scale=8, border=4)
    return Response(image.getvalue(), media_type="image/png", headers={"Cache-Control": "no-store"})


@router.get("/api/v1/libraries/{library_id}/availability", response_model=AvailabilityOut)
def seat_availability(
    library_id: uuid.UUID,
    date: dt.date,
    start: str | None = Query(default=None, pattern=HHMM, description="local HH:MM (default: opening)"),
    end: str | None = Query(default=None, pattern=HHMM, description="local HH:MM (default: closing)"),
    session: Session = Depends(get_session),
    cache: AvailabilityCache = Depends(get_availability_cache),
) -> AvailabilityOut:
    return availability.seat_availability(session, cache, library_id, date, start, end)


@router.post("/api/v1/libraries/{library_id}/waitlist", status_code=201, response_model=WaitlistOut)
def join_waitlist(
    library_id: uuid.UUID,
    body: WaitlistJoin,
    principal: Principal = Depends(booker),
    session: Session = Depends(scoped_session),
) -> Any:
    return waitlist.join_waitlist(session, actor_of(principal), library_id, body.plan_id, body.date, utcnow())


@router.get("/api/v1/waitlist", response_model=list[WaitlistOut])
def my_waitlist(principal: Principal = Depends(reader), session: Session = Depends(scoped_session)) -> Any:
    return waitlist.my_waitlist(session, principal.user_id)


@router.delete("/api/v1/waitlist/{entry_id}", response_model=WaitlistOut)
def leave_waitlist(
    entry_id: uuid.UUID, principal: Principal = Depends(booker), session: Session = Depends(scoped_session)
) -> Any:
    return waitlist.leave_waitlist(session, actor_of(principal), entry_id)


@router.post("/api/v1/subscriptions", status_code=201, response_model=SubscriptionOut, tags=["subscriptions"])
def create_subscription(
    body: SubscriptionCreate,
    principal: Principal = Depends(booker),
    session: Session = Depends(scoped_session),
    cache: AvailabilityCache = Depends(get_availability_cache),
) -> Any:
    subscription = subscriptions.create_subscription(session, actor_of(principal), body, utcnow())
    cache.invalidate(subscription.library_id)
    return subscription


@router.get("/api/v1/subscriptions/{subscription_id}", response_model=SubscriptionOut, tags=["subscriptions"])
def get_subscription(
    subscription_id: uuid.UUID,
    principal: Principal = Depends(reader),
    session: Session = Depends(scoped_session),
) -> Any:
    return subscriptions.get_subscription(session, actor_of(principal), subscription_id)


@router.post(
    "/api/v1/subscriptions/{subscription_id}/pause", response_model=SubscriptionOut, tags=["subscriptions"]
)
def pause_subscription(
    subscription_id: uuid.UUID,
    body: PauseIn,
    principal: Principal = Depends(booker),
    session: Session = Depends(scoped_session),
    cache: AvailabilityCache = Depends(get_availability_cache),
) -> Any:
    subscription = subscriptions.pause(session, actor_of(principal), subscription_id, body, utcnow())
    cache.invalidate(subscription.library_id)
    return subscription


@router.post(
    "/api/v1/subscriptions/{subscription_id}/resume", response_model=SubscriptionOut, tags=["subscriptions"]
)
def resume_subscription(
    subscription_id: uuid.UUID,
    principal: Principal = Depends(booker),
    session: Session = Depends(scoped_session),
    cache: AvailabilityCache = Depends(get_availability_cache),
) -> Any:
    subscription = subscriptions.resume(session, actor_of(principal), subscription_id, utcnow())
    cache.invalidate(subscription.library_id)
    return subscription


@router.post(
    "/api/v1/subscriptions/{subscription_id}/confirm", response_model=SubscriptionOut, tags=["subscriptions"]
)
def confirm_subscription(
    subscription_id: uuid.UUID,
    principal: Principal = Depends(desk),
    session: Session = Depends(scoped_session),
) -> Any:
    """Staff took the month's fee at the desk."""
    subscriptions.get_subscription(session, actor_of(principal), subscription_id)
    return subscriptions.confirm_subscription(session, subscription_id, utcnow())


@router.get("/api/v1/libraries/{library_id}/bookings", response_model=list[BookingOut])
def list_library_bookings(
    library_id: uuid.UUID,
    date: dt.date,
    status: BookingStatus | None = None,
    principal: Principal = Depends(require(Permission.READ_BOOKINGS)),
    session: Session = Depends(scoped_session),
) -> list[BookingOut]:
    """The desk's day sheet."""
    rows = service.list_library_bookings(
        session, actor_of(principal), library_id, date, status.value if status else None
    )
    return [service.booking_out(session, row) for row in rows]


@router.post(
    "/api/v1/subscriptions/{subscription_id}/transfer", response_model=SubscriptionOut, tags=["subscriptions"]
)
def transfer_subscription(
    subscription_id: uuid.UUID,
    body: TransferIn,
    principal: Principal = Depends(booker),
    session: Session = Depends(scoped_session),
    cache: AvailabilityCache = Depends(get_availability_cache),
) -> Any:
    subscription = subscriptions.transfer(
        session, actor_of(principal), subscription_id, body.seat_id, utcnow()
    )
    cache.invalidate(subscription.library_id)
    return subscription


@router.websocket("/api/v1/libraries/{library_id}/live")
async def live_seats(websocket: WebSocket, library_id: uuid.UUID, token: str = "") -> None:
    """Authenticated by `?token=<access token>`: a snapshot, then seat changes with `seq`."""
    state = websocket.app.state
    try:
        claims = state.tokens.verify(token)
    except TokenInvalid:
        await websocket.close(code=4401, reason="unauthorized")
        return
    hub = live.live_hub_for(state)
    await websocket.accept()
    subscriber = live.LiveSubscriber(functools.partial(_send_text, websocket))
    try:
        async with hub.subscription(library_id, subscriber):
            seq = await hub.current_seq(library_id)
            try:
                seats = await run_in_threadpool(
                    _snapshot, state.session_factory, library_id, claims.tenant_id
                )
            except ApiError as exc:
                await websocket.close(code=4000 + exc.status, reason=exc.message)
                return
            await websocket.send_json({"type": "snapshot", "seq": seq, "seats": seats})
            subscriber.start(seq)  # events newer than the snapshot, then each as it comes
            await _until_disconnect(websocket)
    except LIVE_UNAVAILABLE as exc:  # the database or Redis is down: say so instead of dropping the socket
        log.warning("live seat map unavailable: %s", type(exc).__name__)
        with contextlib.suppress(RuntimeError):
            await websocket.close(code=1013, reason="try again later")
    finally:
        subscriber.stop()


LIVE_UNAVAILABLE = (OperationalError, InterfaceError, PoolTimeout, RedisError)


def _snapshot(
    session_factory: Any, library_id: uuid.UUID, viewer_tenant: uuid.UUID | None
) -> list[dict[str, Any]]:
    with session_factory() as session:
        return live.snapshot(session, library_id, utcnow(), viewer_tenant)


async def _send_text(websocket: WebSocket, text: str) -> None:
    try:
        await websocket.send_text(text)
    except (WebSocketDisconnect, RuntimeError, OSError):
        pass  # the socket went away: the receiving side sees the disconnect


async def _until_disconnect(websocket: WebSocket) -> None:
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
