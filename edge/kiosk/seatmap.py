"""Today at the desk, from the store alone (works with the cloud unreachable): the seat map by zone and
the expected arrivals.

A pass's booking starts `checkin_open` after its `valid_from` (the cloud opens the door that much
early). A booking is a no-show once its start + grace has passed with no check-in; the cloud may
revoke such a pass, which does not make the seat free until the booking ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from edge.store import Store, iso

SEAT_STATES = ("free", "booked", "occupied", "no_show")
SEAT_STATE_NAMES = {"free": "free", "booked": "booked", "occupied": "occupied", "no_show": "no-show"}
_PRIORITY = {state: rank for rank, state in enumerate(SEAT_STATES)}
MAX_ARRIVALS = 40


@dataclass(frozen=True)
class BookingTiming:
    checkin_open: timedelta
    no_show_grace: timedelta


@dataclass(frozen=True)
class TodaysPass:
    pass_id: str
    seat_id: str
    seat_label: str
    holder: str
    start: datetime
    valid_until: datetime
    withdrawn: bool  # revoked or in the revocation list
    arrived: bool
    inside: bool

    def state(self, now: datetime, grace: timedelta) -> str:
        if self.inside:
            return "occupied"
        if not self.arrived and self.start + grace <= now:
            return "no_show"
        return "free" if self.withdrawn else "booked"


def day_bounds(now: datetime, zone: ZoneInfo, days_back: int = 0) -> tuple[datetime, datetime]:
    """Local midnight to the next local midnight (in UTC) of today, or of `days_back` days ago."""
    day = now.astimezone(zone).date() - timedelta(days=days_back)
    start = datetime.combine(day, time(0), zone)
    end = datetime.combine(day + timedelta(days=1), time(0), zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def todays_passes(store: Store, now: datetime, zone: ZoneInfo, timing: BookingTiming) -> list[TodaysPass]:
    """Passes whose booking runs at some point of today and has not ended (cancelled ones excluded)."""
    _, end_of_day = day_bounds(now, zone)
    rows = store.db.query(
        "SELECT p.pass_id, p.seat_id, p.seat_label, p.holder_name, p.holder_id, p.valid_from, p.valid_until,"
        " p.status = 'revoked' OR r.pass_id IS NOT NULL AS withdrawn,"
        " EXISTS (SELECT 1 FROM checkins c WHERE c.pass_id = p.pass_id AND c.direction = 'in') AS arrived,"
        " coalesce(pr.inside, 0) AS inside"
        " FROM passes p LEFT JOIN revocations r ON r.pass_id = p.pass_id"
        " LEFT JOIN presence pr ON pr.pass_id = p.pass_id"
        " WHERE p.status IN ('active', 'revoked') AND p.valid_until > ? AND p.valid_from < ?",
        [iso(now), iso(end_of_day)],
    )
    return [
        TodaysPass(
            pass_id=row["pass_id"],
            seat_id=row["seat_id"] or "",
            seat_label=row["seat_label"] or "",
            holder=row["holder_name"] or (row["holder_id"] or "")[:8],
            start=datetime.fromisoformat(row["valid_from"]) + timing.checkin_open,
            valid_until=datetime.fromisoformat(row["valid_until"]),
            withdrawn=bool(row["withdrawn"]),
            arrived=bool(row["arrived"]),
            inside=bool(row["inside"]),
        )
        for row in rows
    ]


def _clock(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%H:%M")


def seat_map(
    store: Store, passes: list[TodaysPass], now: datetime, zone: ZoneInfo, grace: timedelta
) -> list[dict[str, Any]]:
    """Zones in name order, each with its seats (label order) in one of SEAT_STATES and state counts."""
    by_seat: dict[str, list[TodaysPass]] = {}
    for item in passes:
        by_seat.setdefault(item.seat_id, []).append(item)
    zones: dict[str, dict[str, Any]] = {}
    for seat in store.seats():
        state, holder, until = "free", "", ""
        for item in by_seat.get(seat["seat_id"], []):
            candidate = item.state(now, grace)
            if _PRIORITY[candidate] > _PRIORITY[state]:
                state, holder, until = candidate, item.holder, _clock(item.valid_until, zone)
        zone_name = seat["zone_name"] or "Hall"
        entry = zones.setdefault(
            zone_name, {"name": zone_name, "seats": [], "counts": dict.fromkeys(SEAT_STATES, 0)}
        )
        entry["seats"].append(
            {"seat_id": seat["seat_id"], "label": seat["label"], "seat_type": seat["seat_type"] or "",
             "state": state, "holder": holder, "until": until}
        )  # fmt: skip
        entry["counts"][state] += 1
    return list(zones.values())


def expected_arrivals(
    passes: list[TodaysPass], now: datetime, zone: ZoneInfo, grace: timedelta
) -> list[dict[str, Any]]:
    """Today's bookings not checked in yet (nor withdrawn), by start; `late` once past the grace."""
    waiting = sorted(
        (item for item in passes if not item.arrived and not item.withdrawn), key=lambda item: item.start
    )
    return [
        {
            "start_local": _clock(item.start, zone),
            "until_local": _clock(item.valid_until, zone),
            "seat_label": item.seat_label or "zone pass",
            "holder": item.holder,
            "late": item.start + grace <= now,
        }
        for item in waiting[:MAX_ARRIVALS]
    ]
