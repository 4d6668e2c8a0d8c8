"""Walk-in sales on the edge store alone (no cloud): durable, numbered, queued once, admitted at once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from edge.sales import DeskSales, SaleForm, SaleRefused
from edge.store import Store, iso
from edge.sync_store import SyncStore
from shared.sync import PlanRecord, PullResponse, SeatRecord, WalkinBookingPayload, walkin_booking_id

ZONE = ZoneInfo("Asia/Kolkata")
NOW = datetime(2026, 11, 24, 14, 3, 27, tzinfo=UTC)  # 19:33 in Kolkata
DEVICE_ID = "5e0c2a7b-1f44-4d7e-9a0e-3f2b8c9d1e00"
STAFF = {"sub": "0f5c4a2e-9d1b-4c3a-8e7f-112233445566", "name": "Asha Desk"}
SEAT = "7d2f0c9e-5b1a-4e3c-9f8d-a1b2c3d4e5f6"
HOURLY = "11111111-2222-4333-8444-555555555555"
DAY = "66666666-7777-4888-9999-aaaaaaaaaaaa"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store(tmp_path / "edge.sqlite3")
    store.set_setting("device_id", DEVICE_ID)
    plans = [
        PlanRecord(id=uuid.UUID(HOURLY), name="Hourly desk", kind="hourly", price_minor=4000, currency="INR"),
        PlanRecord(id=uuid.UUID(DAY), name="Day pass", kind="day_pass", price_minor=25000, currency="INR"),
        PlanRecord(id=uuid.uuid4(), name="Monthly", kind="monthly_shift", price_minor=150000, currency="INR"),
    ]
    SyncStore(store).apply_pull(PullResponse(cursor="c1", plans=plans))
    store.db.execute(
        "INSERT INTO passes (pass_id, booking_id, seat_id, seat_label, holder_id, holder_name, valid_from,"
        " valid_until, status) VALUES ('00112233445566aa', 'b', ?, 'A-12', 'h', 'Priya', ?, ?, 'active')",
        [SEAT, iso(NOW - timedelta(days=2)), iso(NOW - timedelta(days=1))],
    )
    return store


def form(**changes: object) -> SaleForm:
    base = SaleForm(seat="a-12", plan_id=HOURLY, hours=2, method="cash", customer_name="Ravi")
    return SaleForm(**(base.__dict__ | changes))  # type: ignore[arg-type]


def test_a_sale_is_stored_queued_once_and_admits_the_walkin(store: Store) -> None:
    sales = DeskSales(store)
    assert [plan["name"] for plan in sales.plans()] == ["Hourly desk", "Day pass"]  # monthly is sold online
    sale = sales.sell(form(), STAFF, NOW, ZONE)

    assert sale["receipt_number"] == "5e0c2a7b-000001" and sale["amount_minor"] == 8000
    assert sale["booking_id"] == str(walkin_booking_id(DEVICE_ID, "5e0c2a7b-000001"))
    (event,) = store.pending_outbox()
    payload = WalkinBookingPayload.model_validate(event["payload"])
    assert (event["kind"], event["id"]) == ("walkin_booking", sale["event_id"])
    assert (payload.seat_id, payload.start, payload.end) == (
        uuid.UUID(SEAT), NOW.replace(second=0), NOW.replace(second=0) + timedelta(hours=2),
    )  # fmt: skip
    assert payload.checked_in_at == NOW and payload.staff_user_id == uuid.UUID(STAFF["sub"])
    assert store.occupancy() == 1 and store.checkins()[-1]["method"] == "walkin"
    with pytest.raises(SaleRefused, match="seat A-12 is booked"):
        sales.sell(form(), STAFF, NOW + timedelta(minutes=30), ZONE)
    store.db.execute("DELETE FROM passes")  # a full resync: the walk-in is still there
    with pytest.raises(SaleRefused, match="is booked for that time"):
        sales.sell(form(seat=SEAT), STAFF, NOW + timedelta(minutes=30), ZONE)


def test_receipt_numbers_continue_after_a_restart(store: Store, tmp_path: Path) -> None:
    DeskSales(store).sell(form(), STAFF, NOW, ZONE)
    store.close()
    reopened = Store(tmp_path / "edge.sqlite3")
    sales = DeskSales(reopened)
    later = sales.sell(form(seat=SEAT, plan_id=DAY), STAFF, NOW + timedelta(hours=3), ZONE)
    assert later["receipt_number"] == "5e0c2a7b-000002"
    assert later["ends_at"] == "2026-11-24T18:30:00+00:00"  # a day pass ends at midnight in Kolkata
    assert [sale["receipt_number"] for sale in sales.recent()] == ["5e0c2a7b-000002", "5e0c2a7b-000001"]
    assert len(reopened.pending_outbox()) == 2


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"seat": "Z-99"}, "unknown seat"),
        ({"seat": ""}, "pick a seat"),
        ({"plan_id": "nope"}, "pick a plan"),
        ({"hours": 0}, "hours must be 1 to 12"),
        ({"method": "upi"}, "UPI reference"),
        ({"method": "card"}, "payment method"),
        ({"customer_phone": "call me"}, "phone number"),
    ],
)
def test_bad_sales_are_refused_and_leave_nothing(
    store: Store, changes: dict[str, object], message: str
) -> None:
    with pytest.raises(SaleRefused, match=message):
        DeskSales(store).sell(form(**changes), STAFF, NOW, ZONE)
    assert store.pending_outbox() == [] and DeskSales(store).recent() == []
    assert store.get_setting("sale_receipt_seq") is None


def test_once_seats_are_synced_only_those_sell(store: Store) -> None:
    cabin = uuid.uuid4()
    seats = [
        SeatRecord(id=uuid.UUID(SEAT), label="A-12", zone_name="Quiet"),
        SeatRecord(id=cabin, label="B-3", zone_name="Cabins"),
    ]
    SyncStore(store).apply_pull(PullResponse(cursor="c2", seats=seats))
    sales = DeskSales(store)
    assert [(seat["zone_name"], seat["label"]) for seat in sales.seats()] == [
        ("Cabins", "B-3"),
        ("Quiet", "A-12"),
    ]
    with pytest.raises(SaleRefused, match="unknown seat"):
        sales.sell(form(seat=str(uuid.uuid4())), STAFF, NOW, ZONE)
    sales.sell(form(seat="b-3"), STAFF, NOW, ZONE)
    assert sales.taken_now(NOW + timedelta(minutes=5)) == {str(cabin)}
