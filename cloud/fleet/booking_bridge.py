"""Wires sync to the booking tables (migration 0100): passes and revocations for the pull, and edge
check-ins marking bookings `checked_in`.

Written against the tables rather than `cloud.booking.service`, whose `check_in` commits the
session (it would commit a push batch half-way). If the booking domain adds
`record_edge_checkin(session, checkin) -> bool` (no commit), `cloud.fleet.hooks` calls that instead.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from cloud.fleet.hooks import (
    EdgeCheckin,
    PullItem,
    PullWindow,
    booking_hook_defined,
    page_rows_sql,
    register_checkin_hook,
    register_pass_source,
)
from shared.sync import PassRecord, PassStatus, PlanRecord, Revocation, SeatRecord

_PASSES_SQL = """
    SELECT b.id, b.pass_id, b.seat_id, s.label, b.user_id, b.status, lower(b.during) AS starts,
           upper(b.during) AS ends, b.updated_at, l.checkin_open_minutes
    FROM bookings b JOIN seats s ON s.id = b.seat_id JOIN libraries l ON l.id = b.library_id
    WHERE b.library_id = :library AND b.pass_id IS NOT NULL
      AND upper(b.during) > :now
      AND lower(b.during) - make_interval(mins => l.checkin_open_minutes) <= :horizon
      AND b.updated_at <= :until
      AND (CAST(:since AS timestamptz) IS NULL OR b.updated_at > :since
           OR lower(b.during) - make_interval(mins => l.checkin_open_minutes) > :previous_horizon)
""" + page_rows_sql("b.updated_at", "pass", "b.pass_id")  # noqa: S608 - constant fragments
_PASSES = text(_PASSES_SQL)

_STATUS = {
    "confirmed": PassStatus.ACTIVE,
    "checked_in": PassStatus.ACTIVE,
    "pending_payment": PassStatus.CANCELLED,
    "cancelled": PassStatus.CANCELLED,
    "no_show": PassStatus.REVOKED,
    "completed": PassStatus.EXPIRED,
}
# Revocations are kept 3 days: older passes have expired anyway (72 h offline at most).
_REVOCATIONS_SQL = """
    SELECT pass_id, reason, revoked_at FROM revocations
    WHERE library_id = :library AND revoked_at <= :until
      AND (CAST(:since AS timestamptz) IS NULL OR revoked_at > :since)
      AND revoked_at > CAST(:now AS timestamptz) - make_interval(days => 3)
""" + page_rows_sql("revoked_at", "revocation", "pass_id")  # noqa: S608 - constant fragments
_REVOCATIONS = text(_REVOCATIONS_SQL)


def _pass_record(row: Any) -> PassRecord:
    opens = dt.timedelta(minutes=int(row.checkin_open_minutes))
    return PassRecord(
        pass_id=row.pass_id,
        booking_id=row.id,
        seat_id=row.seat_id,
        seat_label=row.label,
        holder_id=row.user_id,
        valid_from=(row.starts - opens).replace(microsecond=0),
        valid_until=row.ends.replace(microsecond=0),
        status=_STATUS.get(row.status, PassStatus.CANCELLED),
    )


def booking_passes(session: Session, window: PullWindow) -> Iterable[PullItem]:
    """Pass source over `bookings` and `revocations` (see PullWindow for what is returned)."""
    params = window.sql_params()
    items: list[PullItem] = [(row.updated_at, _pass_record(row)) for row in session.execute(_PASSES, params)]
    for row in session.execute(_REVOCATIONS, params):
        items.append(
            (row.revoked_at, Revocation(pass_id=row.pass_id, revoked_at=row.revoked_at, reason=row.reason))
        )
    return items


_CHECK_IN = text(
    """
    WITH arrivals AS (
      SELECT * FROM unnest(CAST(:pass_ids AS text[]), CAST(:ats AS timestamptz[])) AS a(pass_id, at)
    )
    UPDATE bookings b SET status = 'checked_in', checked_in_at = arrivals.at FROM arrivals
    WHERE b.pass_id = arrivals.pass_id AND b.library_id = :library AND b.status = 'confirmed'
    """
)
_KNOWN = text(
    "SELECT pass_id FROM bookings WHERE pass_id = ANY(CAST(:pass_ids AS text[])) AND library_id = :library"
)


def mark_checked_in(session: Session, checkins: Sequence[EdgeCheckin]) -> list[uuid.UUID]:
    """The door let the holders in: their bookings are `checked_in` (the edge is the authority on this).

    Returns the check-ins/outs that belong to a booking (consumed); exit-button presses are not.
    """
    if booking_hook_defined():
        return []
    with_pass = [c for c in checkins if c.pass_id is not None]
    by_library: dict[uuid.UUID, list[EdgeCheckin]] = {}
    for item in with_pass:
        by_library.setdefault(item.library_id, []).append(item)
    consumed: list[uuid.UUID] = []
    for library_id, items in by_library.items():
        arrivals = [c for c in items if c.direction == "in"]
        if arrivals:
            session.execute(
                _CHECK_IN,
                {"pass_ids": [c.pass_id for c in arrivals], "ats": [c.occurred_at for c in arrivals],
                 "library": library_id},
            )  # fmt: skip
        params = {"pass_ids": sorted({c.pass_id for c in items if c.pass_id}), "library": library_id}
        known = {row.pass_id for row in session.execute(_KNOWN, params)}
        consumed += [c.event_id for c in items if c.pass_id in known]
    return consumed


_PLANS_SQL = """
    SELECT id, name, kind, price_minor, currency, active, updated_at FROM plans
    WHERE library_id = :library AND updated_at <= :until
      AND (CAST(:since AS timestamptz) IS NULL OR updated_at > :since)
"""
_PLANS = text(_PLANS_SQL)
PLAN_KINDS = {"hourly": ("hourly", 60), "day_pass": ("day_pass", 24 * 60), "monthly": ("monthly_shift", None)}


def library_plans(session: Session, window: PullWindow) -> Iterable[PullItem]:
    """Plans the kiosk may sell (cash sales, walk-ins); all on a full resync, changed ones after."""
    items: list[PullItem] = []
    for row in session.execute(_PLANS, window.sql_params()):
        kind, minutes = PLAN_KINDS.get(row.kind, (row.kind, None))
        record = PlanRecord(
            id=row.id, name=row.name, kind=kind, price_minor=row.price_minor, currency=row.currency,
            duration_minutes=minutes, active=row.active,
        )  # fmt: skip
        items.append((row.updated_at, record))
    return items


_SEATS_SQL = """
    SELECT s.id, s.label, s.zone_id, coalesce(z.name, s.zone) AS zone_name, s.seat_type,
           s.status = 'active' AS active, greatest(s.updated_at, z.updated_at) AS changed_at
    FROM seats s LEFT JOIN zones z ON z.id = s.zone_id
    WHERE s.library_id = :library AND greatest(s.updated_at, z.updated_at) <= :until
      AND (CAST(:since AS timestamptz) IS NULL OR greatest(s.updated_at, z.updated_at) > :since)
"""
_SEATS = text(_SEATS_SQL)


def library_seats(session: Session, window: PullWindow) -> Iterable[PullItem]:
    """Seats for the kiosk's map and desk sales, with their zone; a zone rename resends its seats."""
    items: list[PullItem] = []
    for row in session.execute(_SEATS, window.sql_params()):
        record = SeatRecord(
            id=row.id, label=row.label, zone_id=row.zone_id, zone_name=row.zone_name, seat_type=row.seat_type,
            active=row.active,
        )  # fmt: skip
        items.append((row.changed_at, record))
    return items


def install() -> None:
    """Register the bridge's sources and check-in hook (idempotent)."""
    register_pass_source(booking_passes, [_PASSES_SQL, _REVOCATIONS_SQL])
    register_pass_source(library_plans, [_PLANS_SQL])
    register_pass_source(library_seats, [_SEATS_SQL])
    register_checkin_hook(mark_checked_in)
