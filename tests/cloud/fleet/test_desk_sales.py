"""Walk-ins sold at the desk, end to end: edge store (offline sale) → real signed sync push → cloud.

Covers reconciliation (cash/UPI payment with its receipt, walk-in booking checked in), idempotency
(replayed event, same receipt under a new event id), rejections (dead letters), and both outcomes of
a seat conflict with a booking made online meanwhile: moved to a free seat of the same kind, or —
none free — cancelled and refunded through the fake Razorpay gateway.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import text

from cloud.db import platform_scope
from cloud.fleet.pull import LAG
from cloud.identity import service as identity
from cloud.payments.fake_gateway import RunningFakeGateways, start_fake_gateways
from edge.sales import DeskSales, SaleForm
from edge.store import Store, utcnow
from edge.sync import SyncClient

from .conftest import TEST_PASSWORD, LiveCloud, Tenant, enrolled_store, login, make_tenant

ZONE = ZoneInfo("Asia/Kolkata")
HOURLY_PRICE = 5000
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass
class Hall:
    tenant: Tenant
    plan_id: uuid.UUID
    zone_a: uuid.UUID
    seats: dict[str, uuid.UUID]  # label -> id, zone = first letter: A1 A2 | B1 | C1 | D1 D2


@pytest.fixture(scope="module")
def gateways(live_cloud: LiveCloud) -> Iterator[RunningFakeGateways]:
    """The fake gateways, and the cloud's payment settings pointing at them (read on first use)."""
    running = start_fake_gateways("127.0.0.1", 0, f"{live_cloud.url}/api/v1/payments/webhooks")
    with pytest.MonkeyPatch.context() as patch:
        for name, value in running.environment().items():
            patch.setenv(name, value)
        yield running
    running.stop()


@pytest.fixture(scope="module")
def hall(live_cloud: LiveCloud) -> Hall:
    tenant = make_tenant(live_cloud)
    with live_cloud.owner_session() as session:
        platform_scope(session)
        ids = {"t": tenant.tenant_id, "l": tenant.library_id}
        always_open = json.dumps({day: {"open": "00:00", "close": "24:00"} for day in DAYS})
        session.execute(
            text(
                "UPDATE libraries SET cancel_cutoff_minutes = 0, opening_hours = CAST(:hours AS jsonb)"
                " WHERE id = :l"
            ),
            ids | {"hours": always_open},
        )
        zones = {
            name: session.execute(
                text("INSERT INTO zones (tenant_id, library_id, name) VALUES (:t, :l, :n) RETURNING id"),
                ids | {"n": name},
            ).scalar_one()
            for name in ("A", "B", "C", "D")
        }
        seats = {
            label: session.execute(
                text(
                    "INSERT INTO seats (tenant_id, library_id, label, zone, zone_id) VALUES (:t, :l, :label,"
                    " :zone, :zone_id) RETURNING id"
                ),
                ids | {"label": label, "zone": label[0], "zone_id": zones[label[0]]},
            ).scalar_one()
            for label in ("A1", "A2", "B1", "C1", "D1", "D2")
        }
        plan_id = session.execute(
            text(
                "INSERT INTO plans (tenant_id, library_id, name, kind, price_minor, currency)"
                " VALUES (:t, :l, 'Hourly desk', 'hourly', :price, 'INR') RETURNING id"
            ),
            ids | {"price": HOURLY_PRICE},
        ).scalar_one()
        session.commit()
    time.sleep(LAG.total_seconds() + 0.1)  # the pull leaves out rows changed within LAG of now
    return Hall(tenant, plan_id, zones["A"], seats)


@pytest.fixture
def edge(live_cloud: LiveCloud, hall: Hall, tmp_path: Path) -> Iterator[Store]:
    store = enrolled_store(live_cloud.url, live_cloud, hall.tenant, tmp_path / "edge.sqlite3")
    yield store
    store.close()


def staff_member(hall: Hall) -> dict[str, str]:
    """The kiosk session claims of the owner selling at the desk (their PIN was synced)."""
    return {"sub": str(hall.tenant.owner_id), "name": "Olga Owner", "csrf": "x"}


async def sell(edge: Store, hall: Hall, seat: str, **changes: object) -> dict[str, object]:
    client = SyncClient(edge)
    await client.pull_once()  # plans (and passes) while the cloud is reachable
    await client.stop()
    form = SaleForm(seat=seat, plan_id=str(hall.plan_id), hours=2, method="cash")
    form = SaleForm(**(form.__dict__ | changes))  # type: ignore[arg-type]
    return DeskSales(edge).sell(form, staff_member(hall), utcnow(), ZONE)


async def push(edge: Store) -> None:
    client = SyncClient(edge)
    await client.drain()
    await client.stop()


def online_booking(
    live_cloud: LiveCloud,
    hall: Hall,
    seat_label: str,
    paid_with: RunningFakeGateways | None,
    in_minutes: int = 30,
) -> uuid.UUID:
    """A student books the seat online for 2 hours from `in_minutes` through the real API (and pays)."""
    email = f"stu-{uuid.uuid4().hex[:8]}@example.com"
    with live_cloud.owner_session() as session:
        platform_scope(session)
        identity.create_user(session, email, TEST_PASSWORD)
        session.commit()
    headers = {"Authorization": f"Bearer {login(live_cloud, email)}"}
    start = (utcnow() + timedelta(minutes=in_minutes)).astimezone(ZONE).replace(second=0, microsecond=0)
    body = {
        "plan_id": str(hall.plan_id),
        "seat_id": str(hall.seats[seat_label]), "start": start.isoformat(),
        "end": (start + timedelta(hours=2)).isoformat(),
    }  # fmt: skip
    response = httpx.post(f"{live_cloud.url}/api/v1/bookings", json=body, headers=headers)
    assert response.status_code == 201, response.text
    booking_id = uuid.UUID(response.json()["id"])
    if paid_with is not None:
        order = httpx.post(
            f"{live_cloud.url}/api/v1/payments/orders",
            json={"booking_id": str(booking_id), "provider": "razorpay"},
            headers=headers,
        )
        assert order.status_code == 201, order.text
        paid = httpx.post(f"{paid_with.base_url}/_fake/razorpay/orders/{order.json()['order_ref']}/pay")
        assert paid.status_code == 200, paid.text
        wait_for(live_cloud, "SELECT status FROM bookings WHERE id = :b", {"b": booking_id}, "confirmed")
    return booking_id


def wait_for(live_cloud: LiveCloud, query: str, params: dict[str, object], expected: object) -> None:
    """Poll until the webhook the fake gateway sent has been applied (delivery is asynchronous)."""
    deadline = time.monotonic() + 15
    value = None
    while time.monotonic() < deadline:
        with live_cloud.owner_session() as session:
            value = session.execute(text(query), params).scalar()
        if value == expected:
            return
        time.sleep(0.05)
    raise AssertionError(f"{query} gave {value!r}, not {expected!r}")


def one(live_cloud: LiveCloud, query: str, **params: object) -> dict[str, object]:
    with live_cloud.owner_session() as session:
        return dict(session.execute(text(query), params).mappings().one())


async def test_offline_walkin_is_reconciled_once(live_cloud: LiveCloud, hall: Hall, edge: Store) -> None:
    sale = await sell(
        edge, hall, str(hall.seats["C1"]), method="upi", upi_ref="UPI-4471-9912", customer_name="Ravi"
    )
    sales = DeskSales(edge)
    assert sales.queued(str(sale["receipt_number"]))
    (queued,) = [row for row in edge.pending_outbox() if row["kind"] == "walkin_booking"]

    await push(edge)

    assert edge.pending_outbox() == [] and not sales.queued(str(sale["receipt_number"]))
    payment = one(
        live_cloud,
        "SELECT p.*, b.status AS booking_status, b.seat_id, b.checked_in_at FROM payments p"
        " JOIN bookings b ON b.id = p.booking_id WHERE p.receipt_number = :r",
        r=sale["receipt_number"],
    )
    assert (payment["provider"], payment["method"], payment["upi_ref"], payment["status"]) == (
        "desk", "upi", "UPI-4471-9912", "captured",
    )  # fmt: skip
    assert payment["amount_minor"] == payment["captured_minor"] == 2 * HOURLY_PRICE
    assert payment["booking_status"] == "checked_in" and payment["seat_id"] == hall.seats["C1"]
    assert str(payment["booking_id"]) == sale["booking_id"] and payment["invoice_number"]

    # the same event again, and the same receipt under a new event id: neither counts twice
    edge.db.execute(
        "INSERT INTO outbox (id, kind, occurred_at, payload, attempts, dead) VALUES (?, ?, ?, ?, 0, 0)",
        [queued["id"], queued["kind"], queued["occurred_at"], json.dumps(queued["payload"])],
    )
    edge.enqueue("walkin_booking", queued["payload"])
    await push(edge)
    assert edge.pending_outbox() == []
    count = one(
        live_cloud, "SELECT count(*) AS n FROM payments WHERE receipt_number = :r", r=sale["receipt_number"]
    )
    assert count["n"] == 1


async def test_cash_at_the_desk_pays_a_held_booking(live_cloud: LiveCloud, hall: Hall, edge: Store) -> None:
    held = online_booking(live_cloud, hall, "C1", None, in_minutes=8 * 60)  # unpaid: pending_payment
    now = utcnow()
    edge.enqueue(
        "cash_sale",
        {"receipt_number": "c0ffee00-000007", "booking_id": str(held), "amount_minor": 2 * HOURLY_PRICE,
         "currency": "INR", "method": "cash", "staff_user_id": str(hall.tenant.owner_id),
         "sold_at": now.isoformat()},
    )  # fmt: skip
    await push(edge)
    booking = one(live_cloud, "SELECT status, hold_expires_at FROM bookings WHERE id = :b", b=held)
    assert booking == {"status": "confirmed", "hold_expires_at": None}
    paid = one(
        live_cloud,
        "SELECT method, provider, booking_id FROM payments WHERE receipt_number = 'c0ffee00-000007'",
    )
    assert paid == {"method": "cash", "provider": "desk", "booking_id": held}


async def test_bad_sales_become_dead_letters(live_cloud: LiveCloud, hall: Hall, edge: Store) -> None:
    now = utcnow()
    unknown_seat = {
        "receipt_number": "0badc0de-000001", "plan_id": str(hall.plan_id), "amount_minor": 5000,
        "currency": "INR", "method": "cash", "staff_user_id": str(hall.tenant.owner_id),
        "sold_at": now.isoformat(), "seat_id": str(uuid.uuid4()), "start": now.isoformat(),
        "end": (now + timedelta(hours=1)).isoformat(),
    }  # fmt: skip
    edge.enqueue("walkin_booking", unknown_seat)
    edge.enqueue(
        "walkin_booking",
        unknown_seat | {"seat_id": str(hall.seats["C1"]), "staff_user_id": str(uuid.uuid4())},
    )
    edge.enqueue("walkin_booking", {"receipt_number": "nope", "amount_minor": -5})
    await push(edge)
    reasons = sorted(row["reason"] for row in edge.db.query("SELECT reason FROM sync_dead_letters"))
    assert reasons[1:] == [
        "the selling staff member is not staff of this library",
        "unknown seat for this library",
    ]
    assert reasons[0].startswith("invalid walkin_booking:")
    assert (
        one(live_cloud, "SELECT count(*) AS n FROM payments WHERE receipt_number = '0badc0de-000001'")["n"]
        == 0
    )


async def test_conflict_moves_the_online_booking(live_cloud: LiveCloud, hall: Hall, edge: Store) -> None:
    sale = await sell(edge, hall, str(hall.seats["A1"]))  # pulled before the online booking exists
    online = online_booking(live_cloud, hall, "A1", None)

    await push(edge)

    moved = one(live_cloud, "SELECT seat_id, status, pass_id FROM bookings WHERE id = :b", b=online)
    assert (moved["seat_id"], moved["status"]) == (hall.seats["A2"], "pending_payment")  # held, unpaid
    walkin = one(
        live_cloud, "SELECT seat_id, status FROM bookings WHERE id = :b", b=uuid.UUID(str(sale["booking_id"]))
    )
    assert (walkin["seat_id"], walkin["status"]) == (hall.seats["A1"], "checked_in")
    conflict = conflict_of(live_cloud, hall, str(sale["receipt_number"]))
    assert (conflict["outcome"], conflict["moved_to_seat_id"], conflict["refund_status"]) == (
        "moved", str(hall.seats["A2"]), "none",
    )  # fmt: skip
    kinds = notifications(live_cloud, online, conflict["id"])
    assert "booking_modified" in kinds and "seat_conflict" in kinds


async def test_conflict_without_a_free_seat_cancels_and_refunds(
    live_cloud: LiveCloud, hall: Hall, edge: Store, gateways: RunningFakeGateways
) -> None:
    sale = await sell(edge, hall, str(hall.seats["B1"]), hours=1)  # B1 is alone in its zone
    online = online_booking(live_cloud, hall, "B1", gateways)

    await push(edge)

    cancelled = one(live_cloud, "SELECT status, cancel_reason FROM bookings WHERE id = :b", b=online)
    assert cancelled == {"status": "cancelled", "cancel_reason": "seat_conflict"}
    refund = one(
        live_cloud,
        "SELECT p.status, r.amount_minor FROM payments p"
        " JOIN payment_refunds r ON r.payment_id = p.id WHERE p.booking_id = :b",
        b=online,
    )
    # one refund of everything (its reason is whichever of our call and the gateway's webhook came first)
    assert refund == {"status": "refunded", "amount_minor": 2 * HOURLY_PRICE}
    conflict = conflict_of(live_cloud, hall, str(sale["receipt_number"]))
    assert (conflict["outcome"], conflict["refund_status"], conflict["refund_minor"]) == (
        "cancelled", "sent", 2 * HOURLY_PRICE,
    )  # fmt: skip
    kinds = notifications(live_cloud, online, conflict["id"])
    assert "booking_cancelled" in kinds and "seat_conflict" in kinds


async def test_when_the_online_holder_is_inside_the_walkin_moves(
    live_cloud: LiveCloud, hall: Hall, edge: Store
) -> None:
    sale = await sell(edge, hall, str(hall.seats["D1"]))
    online = online_booking(live_cloud, hall, "D1", None, in_minutes=0)
    with live_cloud.owner_session() as session:  # the door let them in (pushed by another edge)
        session.execute(text("UPDATE bookings SET status = 'checked_in' WHERE id = :b"), {"b": online})
        session.commit()

    await push(edge)

    kept = one(live_cloud, "SELECT seat_id, status FROM bookings WHERE id = :b", b=online)
    assert kept == {"seat_id": hall.seats["D1"], "status": "checked_in"}
    walkin = one(
        live_cloud, "SELECT seat_id, status FROM bookings WHERE id = :b", b=uuid.UUID(str(sale["booking_id"]))
    )
    assert walkin == {"seat_id": hall.seats["D2"], "status": "checked_in"}
    conflict = conflict_of(live_cloud, hall, str(sale["receipt_number"]))
    assert (conflict["outcome"], conflict["moved_to_seat_id"]) == ("walkin_moved", str(hall.seats["D2"]))


def conflict_of(live_cloud: LiveCloud, hall: Hall, receipt_number: str) -> dict[str, Any]:
    """The owner's view of the conflict a receipt caused (GET /api/v1/tenant/sync-conflicts)."""
    response = httpx.get(f"{live_cloud.url}/api/v1/tenant/sync-conflicts", headers=hall.tenant.owner_headers)
    assert response.status_code == 200, response.text
    (conflict,) = [c for c in response.json() if c["receipt_number"] == receipt_number]
    return dict(conflict)


def notifications(live_cloud: LiveCloud, booking_id: uuid.UUID, conflict_id: str) -> set[str]:
    with live_cloud.owner_session() as session:
        rows = session.execute(
            text("SELECT kind FROM notification_outbox WHERE dedupe_key LIKE :a OR dedupe_key LIKE :b"),
            {"a": f"%booking:{booking_id}%", "b": f"%sync_conflict:{conflict_id}%"},
        )
        return {row.kind for row in rows}
