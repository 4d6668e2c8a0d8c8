"""Monthly dues end to end: first period paid through a renewal order, renewal ahead of the period,
reminders, suspension (passes revoked for the door), payment reinstating the subscription on another
seat when its own was taken; all with an injected clock for the jobs."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.orm import Session

from cloud.billing.config import BillingSettings
from cloud.billing.jobs import run_billing_jobs
from cloud.booking.jobs import run_booking_jobs
from cloud.fleet.booking_bridge import booking_passes
from cloud.fleet.hooks import PullWindow
from cloud.identity.roles import Role
from shared.sync import Revocation
from tests.cloud.booking.conftest import LIBRARY_TZ, LibrarySetup
from tests.cloud.booking.helpers import local_day
from tests.cloud.payflow.conftest import PayflowServer, wait_until


def _local_noon(day: dt.date) -> dt.datetime:
    from zoneinfo import ZoneInfo

    return dt.datetime.combine(day, dt.time(12, 0), tzinfo=ZoneInfo(LIBRARY_TZ)).astimezone(dt.UTC)


async def _pay_due(
    http: httpx.AsyncClient, payflow: PayflowServer, student: Any, sub_id: str
) -> dict[str, Any]:
    response = await http.post(
        f"/api/v1/subscriptions/{sub_id}/renewal-order",
        json={"provider": "razorpay"},
        headers={**student.headers, "Idempotency-Key": f"k-{uuid.uuid4().hex}"},
    )
    assert response.status_code == 201, response.text
    order = dict(response.json())
    async with httpx.AsyncClient(base_url=payflow.fakes.base_url) as fake:
        paid = await fake.post(f"/_fake/razorpay/orders/{order['order_ref']}/pay")
    assert paid.status_code == 200, paid.text
    return order


def _scalar(session: Session, sql: str, **params: Any) -> Any:
    session.expire_all()
    return session.execute(text(sql), params).scalar()


def _outbox_kinds(session: Session, user_id: uuid.UUID) -> list[str]:
    rows = session.execute(
        text(
            "SELECT kind FROM notification_outbox WHERE recipient_user_id = :u AND channel = 'email' "
            "ORDER BY created_at, kind"
        ),
        {"u": user_id},
    )
    return [row[0] for row in rows]


async def test_monthly_dues_renew_remind_suspend_and_reinstate_on_another_seat(
    payflow: PayflowServer,
    http: httpx.AsyncClient,
    library: LibrarySetup,
    student: Any,
    owner: Any,
    owner_session: Session,
    make_account: Any,
) -> None:
    payflow.app.state.billing_settings = BillingSettings(app_url="https://app.example")
    body = {"plan_id": library.plans["Morning"]["id"], "seat_id": library.seat("A1")["id"],
            "start_date": local_day(1).isoformat()}  # fmt: skip
    created = await http.post("/api/v1/subscriptions", json=body, headers=student.headers)
    assert created.status_code == 201, created.text
    sub = created.json()
    assert sub["status"] == "pending_payment"

    # the first period is paid with the same renewal-order checkout
    first = await _pay_due(http, payflow, student, sub["id"])
    assert first["amount_minor"] == 150000 and first["currency"] == "INR"
    sql_status = "SELECT status FROM subscriptions WHERE id = :id"
    wait_until(lambda: _scalar(owner_session, sql_status, id=sub["id"]) == "active")
    assert (
        _scalar(owner_session, "SELECT status FROM subscription_dues WHERE payment_id = :p", p=first["id"])
        == "paid"
    )
    wait_until(lambda: "payment_succeeded" in _outbox_kinds(owner_session, student.id))
    nothing = await http.post(
        f"/api/v1/subscriptions/{sub['id']}/renewal-order",
        json={"provider": "razorpay"},
        headers=student.headers,
    )
    assert nothing.status_code == 409 and nothing.json()["error"]["code"] == "nothing_due"

    end = dt.date.fromisoformat(sub["end_date"])
    assert run_billing_jobs(payflow.app.state, _local_noon(end - dt.timedelta(days=6))).renewals == 0
    renewal = run_billing_jobs(payflow.app.state, _local_noon(end - dt.timedelta(days=5)))
    assert renewal.renewals == 1
    again = run_billing_jobs(payflow.app.state, _local_noon(end - dt.timedelta(days=5)))
    assert again.renewals == 0 and again.notices == 0  # idempotent
    mine = (await http.get("/api/v1/users/me/dues", headers=student.headers)).json()
    assert [(d["status"], d["due_on"], d["amount_minor"], d["seat_label"], d["plan_name"]) for d in mine] == [
        ("upcoming", end.isoformat(), 150000, "A1", "Morning")
    ]
    period_rows = "SELECT count(*) FROM bookings WHERE subscription_id = :id AND status = 'confirmed'"
    rows_before = _scalar(owner_session, period_rows, id=sub["id"])

    # reminders: 3 days before, on the day, overdue (each once), then suspension after the grace
    for offset, status in ((-3, "upcoming"), (-3, "upcoming"), (0, "due"), (1, "overdue"), (2, "overdue")):
        run_billing_jobs(payflow.app.state, _local_noon(end + dt.timedelta(days=offset)))
        listed = await http.get("/api/v1/tenant/dues", headers=owner.headers)
        assert [d["status"] for d in listed.json()] == [status], (offset, listed.text)
    kinds = _outbox_kinds(owner_session, student.id)
    for kind in ("dues_reminder_before", "dues_reminder_due", "dues_overdue"):
        assert kinds.count(kind) == 1, kinds
    assert (await http.get("/api/v1/tenant/dues?status=overdue", headers=owner.headers)).json()[0][
        "student_email"
    ] == student.email

    # a pass issued for a day of the new period is revoked at suspension (the edge pulls revocations)
    future_row = _scalar(
        owner_session,
        "SELECT id FROM bookings WHERE subscription_id = :id AND status = 'confirmed' "
        "ORDER BY lower(during) DESC LIMIT 1",
        id=sub["id"],
    )
    issued = await http.get(f"/api/v1/bookings/{future_row}/pass", headers=student.headers)
    assert issued.status_code == 200, issued.text
    suspended_at = _local_noon(end + dt.timedelta(days=3))
    report = run_booking_jobs(payflow.app.state, suspended_at)  # the jobs runner runs billing too
    assert report is not None
    assert _scalar(owner_session, sql_status, id=sub["id"]) == "suspended"
    revoked = "SELECT count(*) FROM revocations r JOIN bookings b ON b.id = r.booking_id WHERE b.id = :id"
    assert _scalar(owner_session, revoked, id=future_row) == 1
    pass_id = _scalar(owner_session, "SELECT pass_id FROM bookings WHERE id = :id", id=future_row)
    real_now = dt.datetime.now(dt.UTC)
    window = PullWindow(
        tenant_id=owner.tenant_id, library_id=uuid.UUID(library.id), now=real_now, changed_after=None,
        changed_until=real_now + dt.timedelta(minutes=1), previous_horizon=None,
        horizon=real_now + dt.timedelta(days=1),
    )  # fmt: skip
    pulled = [record for _, record in booking_passes(owner_session, window)]
    assert any(isinstance(r, Revocation) and r.pass_id == pass_id for r in pulled)  # the door learns it
    assert "suspension" in _outbox_kinds(owner_session, student.id)
    cancelled = _scalar(
        owner_session,
        "SELECT count(*) FROM bookings WHERE subscription_id = :id AND cancel_reason = 'suspended'",
        id=sub["id"],
    )
    assert cancelled > 0 and _scalar(owner_session, period_rows, id=sub["id"]) == rows_before - cancelled

    # meanwhile someone else takes A1 during the morning shift of a later day: payment moves the member
    other = await make_account(Role.STUDENT)
    taken = _local_noon(end + dt.timedelta(days=10)) - dt.timedelta(hours=4)
    owner_session.execute(
        text(
            "INSERT INTO bookings (tenant_id, library_id, seat_id, user_id, plan_id, kind, status, during, "
            "price_minor, currency) SELECT tenant_id, id, :seat, :user, :plan, 'hourly', 'confirmed', "
            "tstzrange(:start, :end, '[)'), 5000, 'INR' FROM libraries WHERE id = :library"
        ),
        {"seat": library.seat("A1")["id"], "user": other.id, "plan": library.plans["Hourly"]["id"],
         "start": taken, "end": taken + dt.timedelta(hours=2), "library": library.id},
    )  # fmt: skip
    owner_session.commit()
    await _pay_due(http, payflow, student, sub["id"])
    wait_until(lambda: _scalar(owner_session, sql_status, id=sub["id"]) == "active")
    seat = _scalar(owner_session, "SELECT seat_id FROM subscriptions WHERE id = :id", id=sub["id"])
    assert str(seat) == library.seat("A2")["id"]
    assert (await http.get("/api/v1/users/me/dues", headers=student.headers)).json() == []
