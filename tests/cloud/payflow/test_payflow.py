"""The payment flow end to end over real HTTP: cloud app (uvicorn) <-> fake Razorpay/Stripe,
webhooks signed by the fakes and by the providers' SDKs, refunds, invoice numbers."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import time
import uuid
from typing import Any

import httpx
import razorpay
import stripe
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from cloud.booking.models import Booking
from cloud.payments.models import Payment
from tests.cloud.booking.conftest import LibrarySetup
from tests.cloud.booking.helpers import hourly, slot
from tests.cloud.payflow.conftest import PayflowServer, wait_until

ORDERS = "/api/v1/payments/orders"
GSTIN = "29AAGCB7383J1Z4"


async def _booking(
    http: httpx.AsyncClient, library: LibrarySetup, student: Any, seat: str = "A1"
) -> dict[str, Any]:
    response = await http.post(
        "/api/v1/bookings", json=hourly(library, seat, slot(3, "10:00", "12:00")), headers=student.headers
    )
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "pending_payment"
    return dict(response.json())


async def _order(
    http: httpx.AsyncClient, student: Any, booking_id: str, provider: str, key: str
) -> httpx.Response:
    return await http.post(
        ORDERS,
        json={"booking_id": booking_id, "provider": provider},
        headers={**student.headers, "Idempotency-Key": key},
    )


def _payment(session: Session, payment_id: str) -> Payment:
    session.expire_all()
    payment = session.get(Payment, uuid.UUID(payment_id))
    assert payment is not None
    return payment


def _booking_status(session: Session, booking_id: str) -> str:
    session.expire_all()
    booking = session.get(Booking, uuid.UUID(booking_id))
    assert booking is not None
    return booking.status


async def test_razorpay_journey_pay_confirm_invoice_cancel_refund(
    payflow: PayflowServer,
    http: httpx.AsyncClient,
    library: LibrarySetup,
    student: Any,
    owner_session: Session,
) -> None:
    booking = await _booking(http, library, student)
    key = f"key-{uuid.uuid4().hex}"
    first = await _order(http, student, booking["id"], "razorpay", key)
    again = await _order(http, student, booking["id"], "razorpay", key)
    assert first.status_code == 201, first.text
    order = first.json()
    assert again.json()["id"] == order["id"] and again.json()["order_ref"] == order["order_ref"]
    assert order["amount_minor"] == 10000 and order["currency"] == "INR" and order["status"] == "created"

    async with httpx.AsyncClient(base_url=payflow.fakes.base_url) as fake:
        paid = await fake.post(f"/_fake/razorpay/orders/{order['order_ref']}/pay")
    assert paid.status_code == 200, paid.text
    checkout = paid.json()
    verified = await http.post(
        "/api/v1/payments/verify",
        json={
            "provider": "razorpay",
            "order_ref": checkout["razorpay_order_id"],
            "payment_id": checkout["razorpay_payment_id"],
            "signature": checkout["razorpay_signature"],
        },
        headers=student.headers,
    )
    assert verified.status_code == 200, verified.text
    assert verified.json()["status"] == "captured"
    payflow.fakes.wait_for_deliveries(2)  # payment.captured + order.paid, both answered 2xx
    assert all(d.delivered for d in payflow.fakes.deliveries())
    payment = _payment(owner_session, order["id"])
    assert payment.status == "captured" and payment.invoice_number == "INV-000001"
    assert _booking_status(owner_session, booking["id"]) == "confirmed"
    events = owner_session.execute(text("SELECT count(*) FROM payment_webhook_events")).scalar_one()
    assert events == 3  # the verify call and the two webhooks, each recorded once

    cancelled = await http.post(
        f"/api/v1/payments/bookings/{booking['id']}/cancel",
        json={"reason": "plans changed"},
        headers=student.headers,
    )
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "refunded" and cancelled.json()["refunded_minor"] == 10000
    assert _booking_status(owner_session, booking["id"]) == "cancelled"
    payflow.fakes.wait_for_deliveries(3)  # refund.processed: recorded once, not counted twice
    assert _payment(owner_session, order["id"]).status == "refunded"
    refunds = owner_session.execute(text("SELECT sum(amount_minor) FROM payment_refunds")).scalar_one()
    assert refunds == 10000
    audited = owner_session.execute(text("SELECT count(*) FROM audit_log WHERE action = 'payment.refund'"))
    assert audited.scalar_one() == 1


async def test_stripe_journey_webhook_confirms_and_staff_refund_is_partial_and_audited(
    payflow: PayflowServer,
    http: httpx.AsyncClient,
    library: LibrarySetup,
    student: Any,
    owner: Any,
    owner_session: Session,
) -> None:
    booking = await _booking(http, library, student)
    response = await _order(http, student, booking["id"], "stripe", f"key-{uuid.uuid4().hex}")
    assert response.status_code == 201, response.text
    order = response.json()
    assert order["client_secret"]
    async with httpx.AsyncClient(base_url=payflow.fakes.base_url) as fake:
        assert (await fake.post(f"/_fake/stripe/payment_intents/{order['order_ref']}/pay")).status_code == 200
    wait_until(lambda: _booking_status(owner_session, booking["id"]) == "confirmed")
    assert _payment(owner_session, order["id"]).status == "captured"

    refund = await http.post(
        f"/api/v1/payments/{order['id']}/refund",
        json={"reason": "air conditioning broke", "amount_minor": 2500},
        headers=owner.headers,
    )
    assert refund.status_code == 200, refund.text
    assert refund.json()["status"] == "partially_refunded" and refund.json()["refunded_minor"] == 2500
    too_much = await http.post(
        f"/api/v1/payments/{order['id']}/refund",
        json={"reason": "again", "amount_minor": 9000},
        headers=owner.headers,
    )
    assert too_much.status_code == 422 and too_much.json()["error"]["code"] == "invalid_refund_amount"
    by_student = await http.post(
        f"/api/v1/payments/{order['id']}/refund", json={"reason": "please"}, headers=student.headers
    )
    assert by_student.status_code == 403
    row = owner_session.execute(
        text("SELECT actor_id, detail FROM audit_log WHERE action = 'payment.refund'")
    ).one()
    assert row.actor_id == owner.id and row.detail["reason"] == "air conditioning broke"


async def test_payment_after_hold_expired_is_refunded_automatically(
    payflow: PayflowServer,
    http: httpx.AsyncClient,
    library: LibrarySetup,
    student: Any,
    owner_session: Session,
) -> None:
    booking = await _booking(http, library, student)
    order = (await _order(http, student, booking["id"], "razorpay", f"key-{uuid.uuid4().hex}")).json()
    owner_session.execute(
        text("UPDATE bookings SET hold_expires_at = now() - interval '1 minute' WHERE id = :id"),
        {"id": booking["id"]},
    )
    owner_session.commit()
    async with httpx.AsyncClient(base_url=payflow.fakes.base_url) as fake:
        await fake.post(f"/_fake/razorpay/orders/{order['order_ref']}/pay")
    wait_until(lambda: _payment(owner_session, order["id"]).status == "refunded")
    assert _booking_status(owner_session, booking["id"]) == "pending_payment"  # never confirmed


async def test_amount_mismatch_is_flagged_and_failed_after_capture_changes_nothing(
    payflow: PayflowServer,
    http: httpx.AsyncClient,
    library: LibrarySetup,
    student: Any,
    owner_session: Session,
) -> None:
    booking = await _booking(http, library, student)
    order = (await _order(http, student, booking["id"], "razorpay", f"key-{uuid.uuid4().hex}")).json()
    async with httpx.AsyncClient(base_url=payflow.fakes.base_url) as fake:
        await fake.post(f"/_fake/razorpay/orders/{order['order_ref']}/pay", json={"amount_minor": 100})
    payflow.fakes.wait_for_deliveries(2)
    payment = _payment(owner_session, order["id"])
    assert payment.status == "flagged" and "paid 100 INR" in (payment.flag_reason or "")
    assert _booking_status(owner_session, booking["id"]) == "pending_payment"


# --- webhooks signed with the providers' SDKs ------------------------------------------------------


def _razorpay_body(event: str, order_ref: str, amount: int, payment_id: str) -> bytes:
    payment = {
        "id": payment_id,
        "entity": "payment",
        "amount": amount,
        "currency": "INR",
        "status": "captured" if event != "payment.failed" else "failed",
        "order_id": order_ref,
    }
    document = {
        "entity": "event",
        "account_id": "acc_test",
        "event": event,
        "contains": ["payment"],
        "payload": {"payment": {"entity": payment}},
        "created_at": int(time.time()),
    }
    return json.dumps(document).encode()


async def _post_razorpay(
    http: httpx.AsyncClient, payflow: PayflowServer, body: bytes, event_id: str, secret: str | None = None
) -> httpx.Response:
    secret = secret or payflow.fakes.config.razorpay_webhook_secret
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    sdk = razorpay.Client(auth=("rzp_test", "x")).utility
    assert sdk.verify_webhook_signature(body.decode(), signature, secret)  # the SDK agrees with the signer
    return await http.post(
        "/api/v1/payments/webhooks/razorpay",
        content=body,
        headers={
            "X-Razorpay-Signature": signature,
            "X-Razorpay-Event-Id": event_id,
            "Content-Type": "application/json",
        },
    )


async def test_sdk_signed_razorpay_webhooks_out_of_order_duplicate_forged_unknown(
    payflow: PayflowServer,
    http: httpx.AsyncClient,
    library: LibrarySetup,
    student: Any,
    owner_session: Session,
) -> None:
    booking = await _booking(http, library, student)
    order = (await _order(http, student, booking["id"], "razorpay", f"key-{uuid.uuid4().hex}")).json()
    ref = order["order_ref"]

    captured = _razorpay_body("payment.captured", ref, 10000, "pay_sdk1")
    first = await _post_razorpay(http, payflow, captured, "evt_sdk_1")
    assert first.status_code == 200 and first.json() == {"status": "applied"}
    replay = await _post_razorpay(http, payflow, captured, "evt_sdk_1")
    assert replay.status_code == 200 and replay.json() == {"status": "duplicate"}
    late_failure = await _post_razorpay(
        http, payflow, _razorpay_body("payment.failed", ref, 10000, "pay_x"), "evt_2"
    )
    assert late_failure.json() == {"status": "stale"}
    assert _payment(owner_session, order["id"]).status == "captured"
    assert _booking_status(owner_session, booking["id"]) == "confirmed"

    unknown = json.dumps(
        {"entity": "event", "event": "invoice.paid", "payload": {}, "created_at": int(time.time())}
    ).encode()
    ignored = await _post_razorpay(http, payflow, unknown, "evt_3")
    assert ignored.status_code == 200 and ignored.json() == {"status": "ignored"}

    forged = await _post_razorpay(http, payflow, captured, "evt_4", secret="not-the-secret")
    assert forged.status_code == 400 and forged.json()["error"]["code"] == "webhook_rejected"
    malformed = await http.post("/api/v1/payments/webhooks/razorpay", content=b"{not json")
    assert malformed.status_code == 400 and "error" in malformed.json()


def _stripe_event(event_type: str, obj: dict[str, Any]) -> str:
    return json.dumps(
        {
            "id": f"evt_{uuid.uuid4().hex[:24]}",
            "object": "event",
            "type": event_type,
            "created": int(time.time()),
            "data": {"object": obj},
        }
    )


async def _post_stripe(
    http: httpx.AsyncClient, payflow: PayflowServer, payload: str, timestamp: int
) -> httpx.Response:
    secret = payflow.fakes.config.stripe_webhook_secrets[0]
    header = str(stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp=timestamp))
    return await http.post(
        "/api/v1/payments/webhooks/stripe",
        content=payload.encode(),
        headers={"Stripe-Signature": header, "Content-Type": "application/json"},
    )


async def test_sdk_signed_stripe_refund_before_capture_and_stale_signature(
    payflow: PayflowServer,
    http: httpx.AsyncClient,
    library: LibrarySetup,
    student: Any,
    owner_session: Session,
) -> None:
    booking = await _booking(http, library, student)
    order = (await _order(http, student, booking["id"], "stripe", f"key-{uuid.uuid4().hex}")).json()
    intent = order["order_ref"]
    charge = {
        "id": "ch_sdk",
        "object": "charge",
        "amount": 10000,
        "amount_refunded": 10000,
        "currency": "inr",
        "payment_intent": intent,
        "refunds": {"object": "list", "data": [{"id": "re_sdk", "amount": 10000}]},
    }
    now = int(time.time())
    refund_first = await _post_stripe(http, payflow, _stripe_event("charge.refunded", charge), now)
    assert refund_first.status_code == 200, refund_first.text
    assert _payment(owner_session, order["id"]).status == "created"  # kept, applied when the capture lands
    succeeded = {
        "id": intent,
        "object": "payment_intent",
        "amount": 10000,
        "amount_received": 10000,
        "currency": "inr",
        "status": "succeeded",
    }
    late_capture = await _post_stripe(
        http, payflow, _stripe_event("payment_intent.succeeded", succeeded), now
    )
    assert late_capture.status_code == 200, late_capture.text
    assert _payment(owner_session, order["id"]).status == "refunded"

    stale = await _post_stripe(
        http, payflow, _stripe_event("payment_intent.succeeded", succeeded), now - 3600
    )
    assert stale.status_code == 400 and stale.json()["error"]["code"] == "webhook_rejected"
    future = await _post_stripe(
        http, payflow, _stripe_event("payment_intent.succeeded", succeeded), now + 3600
    )
    assert future.status_code == 400


async def test_invoice_numbers_are_gapless_under_concurrency(
    payflow: PayflowServer, owner: Any, owner_session: Session
) -> None:
    import threading

    from cloud.db import platform_scope
    from cloud.payments.service import allocate_invoice_number

    factory = payflow.app.state.session_factory
    numbers: list[str] = []
    lock = threading.Lock()

    def allocate(rollback: bool) -> None:
        with factory() as session:
            platform_scope(session)
            number = allocate_invoice_number(session, owner.tenant_id)
            if rollback:
                session.rollback()  # a failed capture gives its number back
                return
            session.commit()
            with lock:
                numbers.append(number)

    threads = [threading.Thread(target=allocate, args=(i % 3 == 0,)) for i in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(numbers) == [f"INV-{n:06d}" for n in range(1, len(numbers) + 1)]
    assert len(numbers) == 16
    counter = owner_session.execute(
        select(text("last_number")).select_from(text("invoice_counters"))
    ).scalar_one()
    assert counter == 16


async def test_invoice_pdf_for_payer_and_owner_not_for_others(
    payflow: PayflowServer,
    http: httpx.AsyncClient,
    library: LibrarySetup,
    student: Any,
    owner: Any,
    make_account: Any,
    owner_session: Session,
    monkeypatch: Any,
) -> None:
    from pypdf import PdfReader

    from cloud.identity.roles import Role
    from cloud.payments.invoicing import taxable_from_inclusive

    booking = await _booking(http, library, student)
    order = (await _order(http, student, booking["id"], "stripe", f"key-{uuid.uuid4().hex}")).json()
    url = f"/api/v1/payments/{order['id']}/invoice.pdf"
    not_yet = await http.get(url, headers=student.headers)
    assert not_yet.status_code == 409 and not_yet.json()["error"]["code"] == "no_invoice"
    async with httpx.AsyncClient(base_url=payflow.fakes.base_url) as fake:
        await fake.post(f"/_fake/stripe/payment_intents/{order['order_ref']}/pay")
    wait_until(lambda: _payment(owner_session, order["id"]).invoice_number == "INV-000001")

    unconfigured = await http.get(url, headers=student.headers)
    assert (
        unconfigured.status_code == 409 and unconfigured.json()["error"]["code"] == "invoicing_not_configured"
    )
    monkeypatch.setenv("INVOICE_SUPPLIER_GSTIN", GSTIN)
    monkeypatch.setenv("INVOICE_SUPPLIER_NAME", "Sunrise Library Pvt Ltd")
    for account in (student, owner):
        response = await http.get(url, headers=account.headers)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/pdf"
        text_of_pdf = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(response.content)).pages)
        assert "INV-000001" in text_of_pdf and "Sunrise Library Pvt Ltd" in text_of_pdf
    stranger = await make_account(Role.STUDENT)
    assert (await http.get(url, headers=stranger.headers)).status_code == 404
    other_owner = await make_account(Role.LIBRARY_OWNER)
    assert (await http.get(url, headers=other_owner.headers)).status_code == 404
    assert taxable_from_inclusive(10000, 1800) in (8474, 8475)


async def test_cancel_after_cutoff_refunds_nothing_and_paying_a_cancelled_hold_refunds(
    payflow: PayflowServer,
    http: httpx.AsyncClient,
    library: LibrarySetup,
    student: Any,
    owner: Any,
    owner_session: Session,
) -> None:
    late = await _booking(http, library, student, "A1")
    order = (await _order(http, student, late["id"], "razorpay", f"key-{uuid.uuid4().hex}")).json()
    async with httpx.AsyncClient(base_url=payflow.fakes.base_url) as fake:
        await fake.post(f"/_fake/razorpay/orders/{order['order_ref']}/pay")
    wait_until(lambda: _booking_status(owner_session, late["id"]) == "confirmed")
    owner_session.execute(  # starts in 30 minutes: inside the 60-minute cutoff
        text(
            "UPDATE bookings SET during = tstzrange(now() + interval '30 minutes', "
            "now() + interval '90 minutes') WHERE id = :id"
        ),
        {"id": late["id"]},
    )
    owner_session.commit()
    cancel = f"/api/v1/payments/bookings/{late['id']}/cancel"
    refused = await http.post(cancel, headers=student.headers)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "cancellation_cutoff_passed"
    by_owner = await http.post(cancel, json={"reason": "closed for repairs"}, headers=owner.headers)
    assert by_owner.status_code == 200, by_owner.text
    assert by_owner.json()["status"] == "captured" and by_owner.json()["refunded_minor"] == 0

    unpaid = await _booking(http, library, student, "A2")
    second = (await _order(http, student, unpaid["id"], "stripe", f"key-{uuid.uuid4().hex}")).json()
    dropped = await http.post(f"/api/v1/payments/bookings/{unpaid['id']}/cancel", headers=student.headers)
    assert dropped.status_code == 200 and dropped.json() is None  # nothing was paid yet
    async with httpx.AsyncClient(base_url=payflow.fakes.base_url) as fake:
        await fake.post(f"/_fake/stripe/payment_intents/{second['order_ref']}/pay")
    wait_until(lambda: _payment(owner_session, second["id"]).status == "refunded")
    assert _booking_status(owner_session, unpaid["id"]) == "cancelled"


async def test_order_bad_input_gets_typed_errors(
    http: httpx.AsyncClient, library: LibrarySetup, student: Any, make_account: Any
) -> None:
    from cloud.identity.roles import Role

    booking = await _booking(http, library, student)
    other = await make_account(Role.STUDENT)
    not_mine = await _order(http, other, booking["id"], "razorpay", f"key-{uuid.uuid4().hex}")
    assert not_mine.status_code == 404 and not_mine.json()["error"]["code"] == "not_found"
    unknown = await _order(http, student, str(uuid.uuid4()), "stripe", f"key-{uuid.uuid4().hex}")
    assert unknown.status_code == 404
    bad_provider = await _order(http, student, booking["id"], "paypal", f"key-{uuid.uuid4().hex}")
    assert bad_provider.status_code == 422 and bad_provider.json()["error"]["code"] == "validation_error"
    bad_key = await _order(http, student, booking["id"], "razorpay", "short!")
    assert bad_key.status_code == 422 and bad_key.json()["error"]["code"] == "invalid_payment_request"
    anonymous = await http.post(ORDERS, json={"booking_id": booking["id"], "provider": "stripe"})
    assert anonymous.status_code == 401
    verify_unknown = await http.post(
        "/api/v1/payments/verify",
        json={"provider": "stripe", "order_ref": "pi_nope"},
        headers=student.headers,
    )
    assert verify_unknown.status_code == 404
