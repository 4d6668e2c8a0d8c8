"""Payment messages through the outbox: a failed payment notifies once even when the provider
retries the webhook; renewal orders refuse what cannot be paid."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.orm import Session

from cloud.booking.jobs import run_booking_jobs
from cloud.identity.roles import Role
from cloud.payments.gateways.razorpay import sign_webhook as sign_razorpay
from tests.cloud.booking.conftest import LibrarySetup
from tests.cloud.booking.helpers import hourly, local_day, slot
from tests.cloud.payflow.conftest import PayflowServer, wait_until


def _count(session: Session, sql: str, **params: Any) -> int:
    session.expire_all()
    return int(session.execute(text(sql), params).scalar_one())


async def test_failed_payment_notifies_once_despite_a_retried_webhook(
    payflow: PayflowServer,
    http: httpx.AsyncClient,
    library: LibrarySetup,
    student: Any,
    owner_session: Session,
) -> None:
    booking = await http.post(
        "/api/v1/bookings", json=hourly(library, "A2", slot(4, "10:00", "11:00")), headers=student.headers
    )
    assert booking.status_code == 201, booking.text
    order = await http.post(
        "/api/v1/payments/orders",
        json={"booking_id": booking.json()["id"], "provider": "razorpay"},
        headers={**student.headers, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert order.status_code == 201, order.text
    async with httpx.AsyncClient(base_url=payflow.fakes.base_url) as fake:
        failed = await fake.post(f"/_fake/razorpay/orders/{order.json()['order_ref']}/fail")
    assert failed.status_code == 200, failed.text
    delivery = payflow.fakes.wait_for_deliveries(1)[0]
    status = "SELECT count(*) FROM payments WHERE id = :id AND status = 'failed'"
    wait_until(lambda: _count(owner_session, status, id=order.json()["id"]) == 1)
    retry = await http.post(
        "/api/v1/payments/webhooks/razorpay",
        content=delivery.body,
        headers={
            "X-Razorpay-Signature": sign_razorpay(
                delivery.body, payflow.fakes.config.razorpay_webhook_secret
            ),
            "x-razorpay-event-id": delivery.event_id,
            "Content-Type": "application/json",
        },
    )
    assert retry.status_code == 200 and retry.json()["status"] == "duplicate"
    messages = (
        "SELECT count(*) FROM notification_outbox WHERE recipient_user_id = :u AND kind = 'payment_failed' "
        "AND channel = 'email'"
    )
    assert _count(owner_session, messages, u=student.id) == 1


async def test_renewal_order_refuses_others_and_expired_holds(
    payflow: PayflowServer,
    http: httpx.AsyncClient,
    library: LibrarySetup,
    student: Any,
    owner_session: Session,
    make_account: Any,
) -> None:
    body = {"plan_id": library.plans["Morning"]["id"], "seat_id": library.seat("A3")["id"],
            "start_date": local_day(2).isoformat()}  # fmt: skip
    sub = (await http.post("/api/v1/subscriptions", json=body, headers=student.headers)).json()
    path = f"/api/v1/subscriptions/{sub['id']}/renewal-order"
    other = await make_account(Role.STUDENT)
    foreign = await http.post(path, json={"provider": "razorpay"}, headers=other.headers)
    assert foreign.status_code == 404
    unknown = await http.post(path, json={"provider": "paypal"}, headers=student.headers)
    assert unknown.status_code == 422 and "error" in unknown.json()
    ordered = await http.post(path, json={"provider": "razorpay"}, headers=student.headers)
    assert ordered.status_code == 201 and ordered.json()["amount_minor"] == 150000, ordered.text
    assert [
        d["status"] for d in (await http.get("/api/v1/users/me/dues", headers=student.headers)).json()
    ] == ["due"]
    owner_session.execute(
        text("UPDATE bookings SET hold_expires_at = now() - interval '1 minute' WHERE subscription_id = :id"),
        {"id": sub["id"]},
    )
    owner_session.commit()
    expired = await http.post(path, json={"provider": "razorpay"}, headers=student.headers)
    assert expired.status_code == 409 and expired.json()["error"]["code"] == "hold_expired"
    run_booking_jobs(payflow.app.state)  # the hold expires: the subscription and its due are over
    assert (await http.get("/api/v1/users/me/dues", headers=student.headers)).json() == []
    dues_messages = (
        "SELECT count(*) FROM notification_outbox WHERE recipient_user_id = :u AND kind LIKE 'dues%'"
    )
    assert _count(owner_session, dues_messages, u=student.id) == 0
    gone = await http.post(path, json={"provider": "razorpay"}, headers=student.headers)
    assert gone.status_code == 409 and gone.json()["error"]["code"] == "nothing_due"
    missing = await http.post(
        f"/api/v1/subscriptions/{uuid.uuid4()}/renewal-order",
        json={"provider": "razorpay"},
        headers=student.headers,
    )
    assert missing.status_code == 404
