"""Deterministic past activity for a library, so the dashboards and the forecast have data.

`seed_history(session, tenant_id=, library_id=, now=, days=28, seed=7)` writes, for each of the
`days` complete local days before `now`'s local date: bookings on the library's active seats (a
morning and an evening rush, quieter weekends), most checked in (status `completed`), some no-shows,
a payment for each (online, and when `payments.method` exists, cash and UPI at the desk too), a few
partial refunds, and the library's hourly energy (rows of `telemetry_hourly`, sensor `main-meter`,
following the occupancy). Every row's id derives from (library, local date, seat, slot), so a
second run, or a run on a later day, inserts only what is missing (the return counts new rows).
All bookings are past and `completed`/`no_show`, outside the exclusion constraint's active states.

Seeding is a platform task: the session is put in the platform scope (the caller commits).
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
import zoneinfo
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from cloud.analytics.jobs import hour_floor
from cloud.analytics.models import TelemetryHourly
from cloud.booking import timing
from cloud.booking.models import Booking, half_open
from cloud.catalog.models import LibraryRecord, Plan, SeatRecord
from cloud.db import platform_scope
from cloud.errors import ApiError
from cloud.identity.models import User
from cloud.payments.models import Payment, PaymentRefund

NAMESPACE = uuid.UUID("6f1c7d1e-3a51-4f0e-9a57-1d2b0c9e4a11")
STUDENTS = 24
HISTORY_EMAIL = "history-{library}-{n:02d}@history.studyspot.example.com"
DEFAULT_HOURLY_MINOR = 5000
NO_SHOW_RATE = 0.08
REFUND_EVERY_DAYS = 4  # the first payment of every 4th day (by date) is half refunded
BASE_LOAD_KWH = 0.6  # lights, router, fridge: per hour while the building is open
SEAT_HOUR_KWH = 0.09  # a desk lamp, a fan and a laptop charger per occupied seat-hour
METER = "main-meter"


@dataclass(frozen=True)
class _Stay:
    seat_id: uuid.UUID
    slot: int
    start: dt.datetime
    end: dt.datetime


@dataclass
class _Batch:
    bookings: list[dict[str, Any]] = field(default_factory=list)
    payments: list[dict[str, Any]] = field(default_factory=list)
    refunds: list[dict[str, Any]] = field(default_factory=list)
    occupied: dict[dt.datetime, float] = field(default_factory=lambda: defaultdict(float))


def seed_history(
    session: Session,
    *,
    tenant_id: uuid.UUID,
    library_id: uuid.UUID,
    now: dt.datetime,
    days: int = 28,
    seed: int = 7,
) -> dict[str, int]:
    """Insert the missing history of the `days` local days before `now`; returns new-row counts."""
    platform_scope(session)
    library = session.get(LibraryRecord, library_id)
    if library is None or library.tenant_id != tenant_id:
        raise ApiError(404, "not_found", "library not found in that tenant")
    tz = timing.zone_of(library.timezone)
    seats = list(
        session.scalars(
            select(SeatRecord.id)
            .where(SeatRecord.library_id == library.id, SeatRecord.status == "active")
            .order_by(SeatRecord.label)
        )
    )
    plan = _hourly_plan(session, library.id)
    students = _students(session, library.id)
    methods = (
        ("online", "online", "online", "cash", "upi") if "method" in Payment.__table__.c else ("online",)
    )
    batch = _Batch()
    today = timing.local_date(now, tz)
    for back in range(days, 0, -1):
        day = today - dt.timedelta(days=back)
        rng = random.Random(f"{seed}:{library.id}:{day.isoformat()}")
        for index, stay in enumerate(_stays_of_day(rng, seats, day, tz)):
            refunded = index == 0 and day.toordinal() % REFUND_EVERY_DAYS == 0
            _add_booking(batch, rng, library, plan, students, methods, stay, refunded=refunded)
    return {
        "students": len(students),
        "bookings": _insert(session, Booking, batch.bookings),
        "no_shows": sum(1 for row in batch.bookings if row["status"] == "no_show"),
        "payments": _insert(session, Payment, batch.payments),
        "refunds": _insert(session, PaymentRefund, batch.refunds),
        "telemetry_hours": _insert_energy(session, library, today, days, tz, batch.occupied),
    }


def _hourly_plan(session: Session, library_id: uuid.UUID) -> Plan | None:
    query = select(Plan).where(Plan.library_id == library_id, Plan.kind == "hourly", Plan.price_minor > 0)
    return session.scalars(query.order_by(Plan.created_at)).first()


def _students(session: Session, library_id: uuid.UUID) -> list[uuid.UUID]:
    emails = [HISTORY_EMAIL.format(library=str(library_id)[:8], n=n) for n in range(1, STUDENTS + 1)]
    found = {user.email: user.id for user in session.scalars(select(User).where(User.email.in_(emails)))}
    for n, email in enumerate(emails, start=1):
        if email not in found:
            user = User(id=uuid.uuid4(), email=email, full_name=f"History Student {n:02d}")
            session.add(user)
            found[email] = user.id
    session.flush()
    return [found[email] for email in emails]


def _at(day: dt.date, hour: float, tz: zoneinfo.ZoneInfo) -> dt.datetime:
    minutes = round(hour * 60)
    return timing.local_instant(day, f"{minutes // 60:02d}:{minutes % 60:02d}", tz)


def _stays_of_day(
    rng: random.Random, seats: Sequence[uuid.UUID], day: dt.date, tz: zoneinfo.ZoneInfo
) -> list[_Stay]:
    """A morning (from 7-10 h, 3-5 h long) and an evening (from 15-18 h, 2-4 h) rush, lighter on
    weekends; the two never overlap on a seat."""
    weekend = day.weekday() >= 5
    morning_share, evening_share = (0.35, 0.3) if weekend else (0.75, 0.55)
    stays = []
    for seat in seats:
        if rng.random() < morning_share:
            start = rng.choice((7, 8, 8, 9, 9, 10))
            stays.append(_Stay(seat, 0, _at(day, start, tz), _at(day, start + rng.choice((3, 4, 4, 5)), tz)))
        if rng.random() < evening_share:
            start = rng.choice((15, 16, 17, 17, 18))
            stays.append(_Stay(seat, 1, _at(day, start, tz), _at(day, start + rng.choice((2, 3, 3, 4)), tz)))
    return stays


def _add_booking(
    batch: _Batch,
    rng: random.Random,
    library: LibraryRecord,
    plan: Plan | None,
    students: Sequence[uuid.UUID],
    methods: Sequence[str],
    stay: _Stay,
    *,
    refunded: bool,
) -> None:
    booking_id = uuid.uuid5(NAMESPACE, f"{library.id}:{stay.seat_id}:{stay.start.isoformat()}:{stay.slot}")
    user_id = rng.choice(students)
    hours = (stay.end - stay.start) / dt.timedelta(hours=1)
    price = round((plan.price_minor if plan else DEFAULT_HOURLY_MINOR) * hours)
    currency = plan.currency if plan else "INR"
    no_show = rng.random() < NO_SHOW_RATE
    checked_in = None if no_show else stay.start + dt.timedelta(minutes=rng.randint(-10, 20))
    batch.bookings.append(
        {
            "id": booking_id, "tenant_id": library.tenant_id, "library_id": library.id,
            "seat_id": stay.seat_id, "user_id": user_id, "plan_id": plan.id if plan else None,
            "kind": "hourly", "status": "no_show" if no_show else "completed",
            "during": half_open(stay.start, stay.end), "price_minor": price, "currency": currency,
            "checked_in_at": checked_in, "pass_id": booking_id.hex[:16],
            "created_at": stay.start - dt.timedelta(hours=rng.randint(2, 48)),
        }
    )  # fmt: skip
    if checked_in is not None:
        _add_occupancy(batch.occupied, max(checked_in, stay.start), stay.end)
    _add_payment(batch, rng, booking_id, user_id, library.tenant_id, price, currency, methods, refunded)


def _add_occupancy(occupied: dict[dt.datetime, float], start: dt.datetime, end: dt.datetime) -> None:
    """Seat-hours per UTC hour (for the energy model only)."""
    hour = hour_floor(start)
    while hour < end:
        overlap = min(end, hour + dt.timedelta(hours=1)) - max(start, hour)
        occupied[hour.astimezone(dt.UTC)] += max(overlap.total_seconds(), 0) / 3600
        hour += dt.timedelta(hours=1)


def _add_payment(
    batch: _Batch,
    rng: random.Random,
    booking_id: uuid.UUID,
    user_id: uuid.UUID,
    tenant_id: uuid.UUID,
    price: int,
    currency: str,
    methods: Sequence[str],
    refunded: bool,
) -> None:
    if price <= 0:
        return
    payment_id = uuid.uuid5(NAMESPACE, f"payment:{booking_id}")
    method = rng.choice(methods)
    booking = batch.bookings[-1]
    batch.payments.append(
        {
            "id": payment_id, "tenant_id": tenant_id, "user_id": user_id, "booking_id": booking_id,
            "provider": "razorpay" if method == "online" else "desk", "method": method,
            "order_ref": f"history_{payment_id.hex[:20]}", "amount_minor": price, "currency": currency,
            "status": "partially_refunded" if refunded else "captured", "captured_minor": price,
            "idempotency_key": f"history-{payment_id}", "captured_at": booking["created_at"],
        }
    )  # fmt: skip
    if refunded:
        batch.refunds.append(
            {
                "id": uuid.uuid5(NAMESPACE, f"refund:{payment_id}"), "tenant_id": tenant_id,
                "user_id": user_id, "payment_id": payment_id, "amount_minor": price // 2,
                "provider_refund_id": f"history_rfnd_{payment_id.hex[:12]}", "reason": "left early (history)",
                "created_at": booking["during"].upper,
            }
        )  # fmt: skip


def _insert(
    session: Session, model: type[Any], rows: list[dict[str, Any]], key: Sequence[str] = ("id",)
) -> int:
    """Insert the rows whose `key` is new; returns how many were."""
    if not rows:
        return 0
    table = model.__table__
    known = set(table.c.keys())
    values = [{name: value for name, value in row.items() if name in known} for row in rows]
    # one compiled statement, sent as multi-row batches (SQLAlchemy "insertmanyvalues")
    statement = insert(table).on_conflict_do_nothing(index_elements=list(key)).returning(table.c[key[0]])
    return len(session.execute(statement, values).all())


def _insert_energy(
    session: Session,
    library: LibraryRecord,
    today: dt.date,
    days: int,
    tz: zoneinfo.ZoneInfo,
    occupied: dict[dt.datetime, float],
) -> int:
    """Hourly meter rows (UTC hours, as the roll-up writes them): a base load, more while open,
    plus a share per occupied seat-hour."""
    start = hour_floor(timing.local_instant(today - dt.timedelta(days=days), "00:00", tz))
    end = timing.local_instant(today, "00:00", tz)
    rows: list[dict[str, Any]] = []
    meter, hour = 0.0, start
    while hour < end:
        local_hour = hour.astimezone(tz).hour
        kwh = (BASE_LOAD_KWH if 6 <= local_hour < 22 else 0.1) + SEAT_HOUR_KWH * occupied.get(hour, 0.0)
        rows.append(
            {
                "tenant_id": library.tenant_id, "library_id": library.id, "sensor": METER, "metric": "energy",
                "hour": hour, "minutes": 60, "samples": 360, "total": (meter + kwh / 2) * 360,
                "minimum": meter, "maximum": meter + kwh, "last": meter + kwh, "increase": kwh,
            }
        )  # fmt: skip
        meter += kwh
        hour += dt.timedelta(hours=1)
    return _insert(session, TelemetryHourly, rows, key=("library_id", "sensor", "metric", "hour"))
