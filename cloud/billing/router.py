"""Billing routes: dues (tenant and own), renewal orders, tenant GST settings, credit notes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from cloud.audit import service as audit
from cloud.billing import credit_notes, dues, listing, tenant_billing
from cloud.billing.schemas import CreditNoteOut, DueFilter, DueOut, RenewalOrderIn
from cloud.booking.models import Booking, Subscription
from cloud.db import scoped_transaction, tenant_scope
from cloud.deps import Principal, get_session, require, require_role
from cloud.errors import ApiError
from cloud.identity.roles import Permission, Role
from cloud.models_common import utcnow
from cloud.openapi import errors
from cloud.payments import invoicing
from cloud.payments import router as payments_router
from cloud.payments import service as payments
from cloud.payments.gateways import GatewayError
from cloud.payments.gateways.base import InvalidPaymentRequest

router = APIRouter(tags=["billing"])
holder = require(Permission.WRITE_BOOKINGS)
staff = require_role(Role.LIBRARY_STAFF, Role.LIBRARY_OWNER)
owner = require_role(Role.LIBRARY_OWNER)


def _tenant_of(principal: Principal) -> uuid.UUID:
    if principal.tenant_id is None:
        raise ApiError(403, "forbidden", "your account belongs to no tenant")
    return principal.tenant_id


@router.get("/api/v1/tenant/dues", response_model=list[DueOut])
def tenant_dues(
    status: DueFilter | None = Query(default=None),
    principal: Principal = Depends(staff),
    session: Session = Depends(get_session),
) -> list[DueOut]:
    tenant_scope(session, _tenant_of(principal), principal.user_id)
    return listing.list_dues(session, utcnow(), status=status)


@router.get("/api/v1/users/me/dues", response_model=list[DueOut])
def my_dues(principal: Principal = Depends(holder), session: Session = Depends(get_session)) -> list[DueOut]:
    tenant_scope(session, None, principal.user_id)
    return listing.list_dues(session, utcnow(), user_id=principal.user_id)


@dataclass(frozen=True)
class _DueOrder:
    due_id: uuid.UUID
    amount_minor: int
    currency: str
    tenant_id: uuid.UUID
    key: str
    booking: Booking


@router.post(
    "/api/v1/subscriptions/{subscription_id}/renewal-order",
    status_code=201,
    response_model=payments_router.PaymentOut,
    tags=["subscriptions"],
)
async def renewal_order(
    request: Request,
    subscription_id: uuid.UUID,
    body: RenewalOrderIn,
    idempotency_key: str | None = Header(default=None, alias="Idempotency-Key", max_length=200),
    principal: Principal = Depends(holder),
) -> payments_router.PaymentOut:
    """A payment order for the subscription's oldest open due (or its unpaid first period); pay it
    with the same checkout as `POST /api/v1/payments/orders`."""
    gateway = payments_router._gateway(request, body.provider)
    factory = request.app.state.session_factory

    def prepare() -> payments_router.PaymentOut | _DueOrder:
        with scoped_transaction(factory, user_id=principal.user_id) as session:
            sub = session.get(Subscription, subscription_id)
            if sub is None or sub.user_id != principal.user_id:
                raise ApiError(404, "not_found", "subscription not found")
            due = dues.payable_due(session, sub, utcnow())
            key = idempotency_key or f"due-{due.id.hex}-{body.provider}"
            existing = payments.existing_order(session, principal.user_id, key)
            if existing is not None:
                return payments_router._out(session, existing)
            booking = dues.booking_of_due(session, due)
            session.expunge(booking)
            return _DueOrder(due.id, due.amount_minor, due.currency, sub.tenant_id, key, booking)

    prepared = await run_in_threadpool(prepare)
    if isinstance(prepared, payments_router.PaymentOut):
        return prepared
    try:
        order = await gateway.create_order(
            prepared.amount_minor,
            prepared.currency,
            prepared.due_id.hex,
            {"due_id": str(prepared.due_id), "tenant_id": str(prepared.tenant_id)},
            prepared.key,
        )
    except InvalidPaymentRequest as exc:
        raise ApiError(422, "invalid_payment_request", str(exc)) from exc
    except GatewayError as exc:
        raise payments_router._gateway_failure(exc) from exc

    def store() -> payments_router.PaymentOut:
        with factory() as session:
            tenant_scope(session, None, principal.user_id)
            payment = payments.store_order(session, prepared.booking, order, prepared.key, prepared.due_id)
            dues.record_order(session, prepared.due_id, payment.id)
            return payments_router._out(session, payment, order.client_secret)

    return await run_in_threadpool(store)


@router.get("/api/v1/tenant/billing", response_model=tenant_billing.TenantBillingOut, responses=errors(404))
def get_tenant_billing(principal: Principal = Depends(owner), session: Session = Depends(get_session)) -> Any:
    tenant_scope(session, _tenant_of(principal), principal.user_id)
    return tenant_billing.require_billing(session, _tenant_of(principal))


@router.put("/api/v1/tenant/billing", response_model=tenant_billing.TenantBillingOut)
def put_tenant_billing(
    body: tenant_billing.TenantBillingIn,
    principal: Principal = Depends(owner),
    session: Session = Depends(get_session),
) -> Any:
    tenant = _tenant_of(principal)
    tenant_scope(session, tenant, principal.user_id)
    billing = tenant_billing.put_billing(session, tenant, body)
    audit.record(
        session, "tenant.billing", tenant_id=tenant, actor_id=principal.user_id, target=str(tenant),
        detail={"gstin": billing.gstin, "state_code": billing.state_code, "gst_rate_bp": billing.gst_rate_bp},
    )  # fmt: skip
    session.commit()
    return billing


def _credit_note_out(note: Any) -> CreditNoteOut:
    url = f"/api/v1/payments/{note.payment_id}/credit-notes/{note.number}.pdf"
    return CreditNoteOut(
        number=note.number, payment_id=note.payment_id, amount_minor=note.amount_minor,
        currency=note.currency, issued_at=note.issued_at, pdf_url=url,
    )  # fmt: skip


@router.get(
    "/api/v1/payments/{payment_id}/credit-notes", response_model=list[CreditNoteOut], tags=["payments"]
)
def list_credit_notes(
    payment_id: uuid.UUID, principal: Principal = Depends(holder), session: Session = Depends(get_session)
) -> list[CreditNoteOut]:
    """The refunds' credit notes of a payment, for the payer and the tenant's staff (RLS decides)."""
    tenant_scope(session, principal.tenant_id, principal.user_id)
    payment = payments.get_payment(session, payment_id)
    return [_credit_note_out(note) for note in credit_notes.credit_notes_of(session, payment.id)]


@router.get(
    "/api/v1/payments/{payment_id}/credit-notes/{number}.pdf", response_class=Response, tags=["payments"]
)
def get_credit_note_pdf(
    payment_id: uuid.UUID,
    number: str,
    principal: Principal = Depends(holder),
    session: Session = Depends(get_session),
) -> Response:
    tenant_scope(session, principal.tenant_id, principal.user_id)
    payment = payments.get_payment(session, payment_id)
    note = credit_notes.credit_note(session, payment.id, number[:16])
    if note is None:
        raise ApiError(404, "not_found", "credit note not found")
    pdf = invoicing.credit_note_pdf(session, payment, note, invoicing.InvoiceSettings())
    headers = {"Content-Disposition": f'inline; filename="{note.number}.pdf"'}
    return Response(pdf, media_type="application/pdf", headers=headers)
