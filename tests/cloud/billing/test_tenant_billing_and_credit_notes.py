"""Per-tenant GST settings on invoices (CGST+SGST within the state, IGST across), credit notes for
refunds with their own gapless series, and the payment messages (each once)."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.orm import Session

from cloud.billing.credit_notes import allocate_credit_note_number
from cloud.db import platform_scope
from cloud.payments import invoicing
from cloud.payments.models import Payment
from tests.cloud.booking.conftest import LibrarySetup
from tests.cloud.booking.helpers import hourly, slot
from tests.cloud.payflow.conftest import PayflowServer, wait_until

GSTIN_KA = "29AAGCB7383J1Z4"
BILLING = {
    "legal_name": "Sunrise Learning Pvt Ltd",
    "gstin": GSTIN_KA,
    "state_code": "29",
    "address": "12 MG Road, Bengaluru",
    "sac_code": "999799",
    "gst_rate_bp": 1800,
}


async def _paid_booking(
    http: httpx.AsyncClient, payflow: PayflowServer, library: LibrarySetup, student: Any
) -> str:
    booking = await http.post(
        "/api/v1/bookings", json=hourly(library, "A1", slot(3, "10:00", "12:00")), headers=student.headers
    )
    assert booking.status_code == 201, booking.text
    order = await http.post(
        "/api/v1/payments/orders",
        json={"booking_id": booking.json()["id"], "provider": "razorpay"},
        headers={**student.headers, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert order.status_code == 201, order.text
    async with httpx.AsyncClient(base_url=payflow.fakes.base_url) as fake:
        assert (await fake.post(f"/_fake/razorpay/orders/{order.json()['order_ref']}/pay")).status_code == 200
    payment_id = str(order.json()["id"])
    wait_until(lambda: _status(http, payflow, payment_id) == "captured")
    return payment_id


def _status(http: httpx.AsyncClient, payflow: PayflowServer, payment_id: str) -> str:
    with payflow.app.state.session_factory() as session:
        platform_scope(session)
        payment = session.get(Payment, uuid.UUID(payment_id))
        return payment.status if payment else ""


def _kinds(session: Session, user_id: uuid.UUID) -> list[str]:
    session.expire_all()
    rows = session.execute(
        text("SELECT kind FROM notification_outbox WHERE recipient_user_id = :u AND channel = 'email'"),
        {"u": user_id},
    )
    return sorted(row[0] for row in rows)


async def test_tenant_gst_settings_validate_and_appear_on_invoices(
    payflow: PayflowServer,
    http: httpx.AsyncClient,
    library: LibrarySetup,
    student: Any,
    owner: Any,
    owner_session: Session,
) -> None:
    missing = await http.get("/api/v1/tenant/billing", headers=owner.headers)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "billing_not_configured"
    for bad in ({"gstin": "29AAGCB7383J1Z5"}, {"gstin": "29AAGCB7383J1Z"}, {"state_code": "27"},
                {"gst_rate_bp": 5000}, {"sac_code": "123456"}):  # fmt: skip
        response = await http.put("/api/v1/tenant/billing", json={**BILLING, **bad}, headers=owner.headers)
        assert response.status_code == 422, (bad, response.text)
        assert "error" in response.json()
    saved = await http.put("/api/v1/tenant/billing", json=BILLING, headers=owner.headers)
    assert saved.status_code == 200, saved.text
    assert (await http.get("/api/v1/tenant/billing", headers=owner.headers)).json() == BILLING

    payment_id = await _paid_booking(http, payflow, library, student)
    for who in (student, owner):
        pdf = await http.get(f"/api/v1/payments/{payment_id}/invoice.pdf", headers=who.headers)
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    payment = owner_session.get(Payment, uuid.UUID(payment_id))
    assert payment is not None
    invoice = invoicing.invoice_for(owner_session, payment, invoicing.InvoiceSettings())
    assert invoice.supplier.name == "Sunrise Learning Pvt Ltd" and invoice.supplier.gstin == GSTIN_KA
    assert invoice.intra_state  # a library without a GST state is in the tenant's state
    owner_session.execute(
        text("UPDATE libraries SET gst_state_code = '27' WHERE id = :id"), {"id": library.id}
    )
    owner_session.commit()
    inter = invoicing.invoice_for(owner_session, payment, invoicing.InvoiceSettings())
    assert not inter.intra_state and inter.customer.state_name == "Maharashtra"
    wait_until(lambda: "invoice_ready" in _kinds(owner_session, student.id))
    assert _kinds(owner_session, student.id).count("payment_succeeded") == 1


async def test_refunds_get_credit_notes_downloadable_by_student_and_owner(
    payflow: PayflowServer,
    http: httpx.AsyncClient,
    library: LibrarySetup,
    student: Any,
    owner: Any,
    owner_session: Session,
    make_account: Any,
) -> None:
    assert (await http.put("/api/v1/tenant/billing", json=BILLING, headers=owner.headers)).status_code == 200
    payment_id = await _paid_booking(http, payflow, library, student)
    for amount in (2000, 3000):
        refund = await http.post(
            f"/api/v1/payments/{payment_id}/refund",
            json={"reason": "fan broken", "amount_minor": amount},
            headers=owner.headers,
        )
        assert refund.status_code == 200, refund.text
    payflow.fakes.wait_for_deliveries(4)  # captured, order.paid, two refund.processed (already stored)
    listed = await http.get(f"/api/v1/payments/{payment_id}/credit-notes", headers=student.headers)
    assert listed.status_code == 200, listed.text
    assert [(n["number"], n["amount_minor"]) for n in listed.json()] == [
        ("CN-000001", 2000),
        ("CN-000002", 3000),
    ]
    for who in (student, owner):
        pdf = await http.get(listed.json()[1]["pdf_url"], headers=who.headers)
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF"), pdf.text
    stranger = await http.get(
        listed.json()[0]["pdf_url"], headers=(await make_account_student(make_account)).headers
    )
    assert stranger.status_code == 404
    unknown = await http.get(
        f"/api/v1/payments/{payment_id}/credit-notes/CN-999999.pdf", headers=owner.headers
    )
    assert unknown.status_code == 404
    assert _kinds(owner_session, student.id).count("refund_processed") == 2


async def make_account_student(make_account: Any) -> Any:
    from cloud.identity.roles import Role

    return await make_account(Role.STUDENT)


async def test_credit_note_numbers_are_gapless_under_concurrency(payflow: PayflowServer, owner: Any) -> None:
    factory = payflow.app.state.session_factory
    numbers: list[str] = []
    lock = threading.Lock()

    def allocate(rollback: bool) -> None:
        with factory() as session:
            platform_scope(session)
            number = allocate_credit_note_number(session, owner.tenant_id)
            if rollback:
                session.rollback()  # a failed refund gives its number back
                return
            session.commit()
            with lock:
                numbers.append(number)

    threads = [threading.Thread(target=allocate, args=(i % 3 == 0,)) for i in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(numbers) == [f"CN-{n:06d}" for n in range(1, 17)]
