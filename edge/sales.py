"""Walk-in sales at the desk, on the edge store: they work with the cloud unreachable.

One transaction (synchronous=FULL) does all of it: the next receipt number (`<edge short id>-<seq>`,
unique per edge), the sale row, a local admission for that seat and window (a row in `passes`, so the
seat shows taken, and the walk-in checked in at the desk), and ONE outbox event `walkin_booking`
whose payload (`shared.sync.WalkinBookingPayload`) carries the booking and the money together.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from edge.store import Store, iso
from shared.passes import new_pass_id
from shared.sync import EventKind, SaleMethod, WalkinBookingPayload, walkin_booking_id

MAX_HOURS = 12
DESK_DOOR = "desk"
_SEQ_SETTING = "sale_receipt_seq"
_SHORT_SETTING = "sale_edge_short_id"


class SaleRefused(ValueError):
    """Bad or impossible sale input; the message is shown to staff."""


@dataclass(frozen=True)
class SaleForm:
    seat: str  # seat id or label as typed/picked
    plan_id: str
    hours: int
    method: str
    upi_ref: str = ""
    customer_name: str = ""
    customer_phone: str = ""


def _create_tables(store: Store) -> None:
    if not store.db.table("walkin_sales").exists():
        store.db.table("walkin_sales").create(
            {"receipt_number": str, "seq": int, "event_id": str, "booking_id": str, "pass_id": str,
             "seat_id": str, "seat_label": str, "plan_id": str, "plan_name": str, "starts_at": str,
             "ends_at": str, "amount_minor": int, "currency": str, "method": str, "upi_ref": str,
             "customer_name": str, "customer_phone": str, "staff_id": str, "staff_name": str,
             "sold_at": str},
            pk="receipt_number", not_null={"seq", "event_id", "seat_id", "plan_id", "sold_at"},
            if_not_exists=True,
        )  # fmt: skip
        store.db.table("walkin_sales").create_index(["seq"], unique=True, if_not_exists=True)


class DeskSales:
    """Sales on the agent's one SQLite file."""

    def __init__(self, store: Store) -> None:
        self.store = store
        _create_tables(store)

    # -- what can be sold -----------------------------------------------------------------------
    def seats(self) -> list[dict[str, Any]]:
        """Seats to sell: the synced seat list (`Store.seats()`), else — before the first seat sync —
        the seats that passes name."""
        synced = self.store.seats()
        if synced:
            return [
                {"seat_id": seat["seat_id"], "label": seat["label"], "zone_name": seat["zone_name"] or ""}
                for seat in synced
            ]
        rows = self.store.db.query(
            "SELECT seat_id, max(seat_label) AS label FROM passes WHERE seat_label != '' AND seat_id != ''"
            " GROUP BY seat_id ORDER BY label"
        )
        return [{"seat_id": row["seat_id"], "label": row["label"], "zone_name": ""} for row in rows]

    def seats_synced(self) -> bool:
        return bool(self.store.seats())

    def taken_now(self, now: datetime) -> set[str]:
        """Seat ids with an active pass (online booking or walk-in) covering `now`."""
        soon = now + timedelta(minutes=1)
        return {seat["seat_id"] for seat in self.seats() if self._taken(seat["seat_id"], now, soon)}

    def plans(self) -> list[dict[str, Any]]:
        """Plans a walk-in can buy (hourly and day passes; monthly shifts are sold online)."""
        if not self.store.db.table("sync_plans").exists():
            return []
        return list(
            self.store.db.query(
                "SELECT * FROM sync_plans WHERE active = 1 AND kind IN ('hourly', 'day_pass')"
                " ORDER BY price_minor"
            )
        )

    def _seat(self, typed: str) -> dict[str, Any]:
        wanted = typed.strip()
        for seat in self.seats():
            if wanted and (seat["seat_id"] == wanted or seat["label"].casefold() == wanted.casefold()):
                return seat
        if not self.seats_synced() and _is_uuid(wanted):  # no seat list yet: the cloud checks it on sync
            return {"seat_id": str(uuid.UUID(wanted)), "label": wanted[:8], "zone_name": ""}
        raise SaleRefused(f"unknown seat {wanted!r}" if wanted else "pick a seat")

    def _plan(self, plan_id: str) -> dict[str, Any]:
        for plan in self.plans():
            if plan["id"] == plan_id:
                return plan
        raise SaleRefused("pick a plan")

    def _taken(self, seat_id: str, start: datetime, end: datetime) -> bool:
        """An active pass or an earlier walk-in (kept even if a full resync empties `passes`) overlaps."""
        window = [seat_id, iso(end), iso(start)]
        overlapping = self.store.db.execute(
            "SELECT (SELECT count(*) FROM passes p WHERE p.seat_id = ? AND p.status = 'active'"
            "  AND p.valid_from < ? AND p.valid_until > ?"
            "  AND NOT EXISTS (SELECT 1 FROM revocations r WHERE r.pass_id = p.pass_id))"
            " + (SELECT count(*) FROM walkin_sales w"
            "  WHERE w.seat_id = ? AND w.starts_at < ? AND w.ends_at > ?)",
            window + window,
        ).fetchone()[0]
        return bool(overlapping)

    # -- selling --------------------------------------------------------------------------------
    def sell(self, form: SaleForm, staff: dict[str, Any], now: datetime, zone: ZoneInfo) -> dict[str, Any]:
        """Record a walk-in sale and admit the walk-in; returns the stored sale row."""
        seat = self._seat(form.seat)
        plan = self._plan(form.plan_id)
        start, end, amount = _window_and_amount(plan, form.hours, now, zone)
        if self._taken(seat["seat_id"], start, end):
            raise SaleRefused(f"seat {seat['label']} is booked for that time; pick another seat")
        with self.store.transaction():
            receipt, seq = self._next_receipt()
            payload = _payload(form, staff, seat, plan, receipt, (start, end, amount), now)
            row = self._insert(payload, seq, seat, plan, staff)
        return row

    def _next_receipt(self) -> tuple[str, int]:
        seq = int(self.store.get_setting(_SEQ_SETTING, "0") or 0) + 1
        self.store.db.execute(
            "INSERT INTO settings (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [_SEQ_SETTING, str(seq)],
        )
        return f"{self._short_id()}-{seq:06d}", seq

    def _short_id(self) -> str:
        device_id = self.store.get_setting("device_id")
        if device_id:
            return uuid.UUID(device_id).hex[:8]
        short = self.store.get_setting(_SHORT_SETTING)
        if short is None:
            short = uuid.uuid4().hex[:8]
            self.store.db.execute("INSERT INTO settings (key, value) VALUES (?, ?)", [_SHORT_SETTING, short])
        return short

    def _insert(
        self,
        payload: WalkinBookingPayload,
        seq: int,
        seat: dict[str, Any],
        plan: dict[str, Any],
        staff: dict[str, Any],
    ) -> dict[str, Any]:
        event_id = str(uuid.uuid4())
        pass_id = new_pass_id()
        booking_id = str(walkin_booking_id(self.store.get_setting("device_id") or "", payload.receipt_number))
        holder = payload.customer_name or f"walk-in {payload.receipt_number}"
        sold_at = iso(payload.sold_at)
        row = {
            "receipt_number": payload.receipt_number, "seq": seq, "event_id": event_id,
            "booking_id": booking_id, "pass_id": pass_id, "seat_id": str(payload.seat_id),
            "seat_label": seat["label"], "plan_id": str(payload.plan_id), "plan_name": plan["name"],
            "starts_at": iso(payload.start), "ends_at": iso(payload.end),
            "amount_minor": payload.amount_minor,
            "currency": payload.currency, "method": payload.method.value, "upi_ref": payload.upi_ref or "",
            "customer_name": payload.customer_name, "customer_phone": payload.customer_phone or "",
            "staff_id": str(staff["sub"]), "staff_name": str(staff.get("name") or ""), "sold_at": sold_at,
        }  # fmt: skip
        db = self.store.db
        columns, marks = ", ".join(row), ", ".join("?" * len(row))
        insert = f"INSERT INTO walkin_sales ({columns}) VALUES ({marks})"  # noqa: S608 - our own column names
        db.execute(insert, list(row.values()))
        db.execute(
            "INSERT INTO passes (pass_id, booking_id, seat_id, seat_label, holder_id, holder_name,"
            " valid_from, valid_until, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'active')",
            [pass_id, booking_id, row["seat_id"], seat["label"], f"walkin:{payload.receipt_number}", holder,
             row["starts_at"], row["ends_at"]],
        )  # fmt: skip
        db.execute(
            "INSERT INTO checkins (event_id, pass_id, holder, door_id, direction, method, occurred_at)"
            " VALUES (?, ?, ?, ?, 'in', 'walkin', ?)",
            [str(uuid.uuid4()), pass_id, holder, DESK_DOOR, sold_at],
        )
        db.execute(
            "INSERT INTO presence (pass_id, inside, door_id, at) VALUES (?, 1, ?, ?)",
            [pass_id, DESK_DOOR, sold_at],
        )
        db.execute(
            "INSERT INTO outbox (id, kind, occurred_at, payload, attempts, dead) VALUES (?, ?, ?, ?, 0, 0)",
            [event_id, EventKind.WALKIN_BOOKING.value, sold_at, payload.model_dump_json()],
        )
        return row

    # -- reading --------------------------------------------------------------------------------
    def sale(self, receipt_number: str) -> dict[str, Any] | None:
        rows = list(
            self.store.db.query("SELECT * FROM walkin_sales WHERE receipt_number = ?", [receipt_number])
        )
        return rows[0] if rows else None

    def recent(self, limit: int = 10) -> list[dict[str, Any]]:
        return list(self.store.db.query("SELECT * FROM walkin_sales ORDER BY seq DESC LIMIT ?", [limit]))

    def queued(self, receipt_number: str) -> bool:
        """Whether the sale still waits in the outbox for the cloud."""
        sale = self.sale(receipt_number)
        if sale is None:
            return False
        rows = self.store.db.execute(
            "SELECT count(*) FROM outbox WHERE id = ?", [sale["event_id"]]
        ).fetchone()
        return bool(rows[0])


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _window_and_amount(
    plan: dict[str, Any], hours: int, now: datetime, zone: ZoneInfo
) -> tuple[datetime, datetime, int]:
    start = now.astimezone(UTC).replace(second=0, microsecond=0)
    if plan["kind"] == "hourly":
        if not 1 <= hours <= MAX_HOURS:
            raise SaleRefused(f"hours must be 1 to {MAX_HOURS}")
        return start, start + timedelta(hours=hours), int(plan["price_minor"]) * hours
    local_day = now.astimezone(zone).date()
    midnight = datetime.combine(local_day + timedelta(days=1), time(0), zone).astimezone(UTC)
    return start, midnight, int(plan["price_minor"])


def _payload(
    form: SaleForm,
    staff: dict[str, Any],
    seat: dict[str, Any],
    plan: dict[str, Any],
    receipt: str,
    window: tuple[datetime, datetime, int],
    now: datetime,
) -> WalkinBookingPayload:
    start, end, amount = window
    method = form.method if form.method in {m.value for m in SaleMethod} else ""
    data = {
        "receipt_number": receipt, "plan_id": plan["id"], "amount_minor": amount,
        "currency": plan["currency"],
        "method": method, "upi_ref": form.upi_ref.strip() or None, "staff_user_id": staff["sub"],
        "customer_name": form.customer_name, "customer_phone": form.customer_phone.strip() or None,
        "sold_at": now, "seat_id": seat["seat_id"], "seat_label": seat["label"][:50], "start": start,
        "end": end, "checked_in_at": now,
    }  # fmt: skip
    try:
        return WalkinBookingPayload.model_validate(data)
    except ValidationError as exc:
        raise SaleRefused(_explain(exc)) from None


_FIELD_NAMES = {
    "upi_ref": "UPI reference",
    "customer_phone": "phone number",
    "customer_name": "customer name",
    "staff_user_id": "staff account",
    "seat_id": "seat",
    "method": "payment method",
}


def _explain(exc: ValidationError) -> str:
    first = exc.errors()[0]
    field = str(first["loc"][0]) if first["loc"] else ""
    label = _FIELD_NAMES.get(field, field)
    message = str(first["msg"]).removeprefix("Value error, ")
    return f"{label}: {message}" if label else message


def receipt_lines(sale: dict[str, Any], zone: ZoneInfo) -> dict[str, str]:
    """Display strings of a sale (money from minor units, times in the library's zone)."""

    def local(stamp: str) -> str:
        return datetime.fromisoformat(stamp).astimezone(zone).strftime("%d %b %Y %H:%M")

    return {
        "amount": money(int(sale["amount_minor"]), sale["currency"]),
        "sold_at": local(sale["sold_at"]),
        "starts_at": local(sale["starts_at"]),
        "ends_at": local(sale["ends_at"]),
    }


def money(minor: int, currency: str) -> str:
    symbol = {"INR": "₹"}.get(currency, f"{currency} ")
    return f"{symbol}{minor // 100:,}.{minor % 100:02d}"
