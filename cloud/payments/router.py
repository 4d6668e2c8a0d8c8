"""Thin payment routes: orders, verify, webhooks, refunds, cancel-with-refund.

Gateway calls are async; the DB work runs in the threadpool through `cloud.payments.service`.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import APIRouter, Depends, Header, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from cloud.audit import service as audit
from cloud.booking import service as booking_service
from cloud.db import platform_scope, scoped_transaction, tenant_scope
from cloud.deps import Principal, get_session, require
from cloud.errors import ApiError
from cloud.identity.roles import Permission
from cloud.models_common import utcnow
from cloud.payments import invoicing, service
from cloud.payments.config import PaymentSettings, build_gateways
from cloud.payments.gateways import GatewayError, PaymentGateway, WebhookRejected
from cloud.payments.gateways.base import CheckoutRejected, InvalidPaymentRequest
from cloud.payments.models import Payment
from cloud.payments.schemas import CheckoutProof, CheckoutStatus, Provider, WebhookEvent, WebhookEventType

log = logging.getLogger(__name__)
router = APIRouter(tags=["payments"])
payer = require(Permission.WRITE_BOOKINGS)
desk = require(Permission.WRITE_LIBRARY_DATA)


class OrderIn(BaseModel):
    booking_id: uuid.UUID
    provider: Provider


class VerifyIn(BaseModel):
    provider: Provider
    order_ref: str = Field(min_length=1, max_length=100)
    payment_id: str | None = Field(default=None, max_length=100)
    signature: str | None = Field(default=None, max_length=200)


class RefundIn(BaseModel):
    reason: str = Field(min_length=3, max_length=500)
    amount_minor: int | None = Field(default=None, ge=1, strict=True)


class CancelIn(BaseModel):
    reason: str = Field(default="", max_length=500)


class PaymentOut(BaseModel):
    id: uuid.UUID
    booking_id: uuid.UUID
    provider: str
    order_ref: str
    amount_minor: int
    currency: str
    status: str
    refunded_minor: int
    flag_reason: str | None
    invoice_number: str | None
    client_secret: str | None = None


def gateways_of(request: Request) -> dict[Provider, PaymentGateway]:
    """The app's gateways, built from the environment on first use."""
    state = request.app.state
    gateways: dict[Provider, PaymentGateway] | None = getattr(state, "payment_gateways", None)
    if gateways is None:
        gateways = build_gateways(PaymentSettings())
        state.payment_gateways = gateways
    return gateways


def _gateway(request: Request, provider: str) -> PaymentGateway:
    gateway = gateways_of(request).get(provider)  # type: ignore[call-overload]
    if gateway is None:
        raise ApiError(404, "provider_not_configured", f"payment provider {provider!r} is not configured")
    assert isinstance(gateway, PaymentGateway)
    return gateway


def _out(session: Session, payment: Payment, client_secret: str | None = None) -> PaymentOut:
    return PaymentOut(
        id=payment.id,
        booking_id=payment.booking_id,
        provider=payment.provider,
        order_ref=payment.order_ref,
        amount_minor=payment.amount_minor,
        currency=payment.currency,
        status=payment.status,
        refunded_minor=service.refunded_total(session, payment.id),
        flag_reason=payment.flag_reason,
        invoice_number=payment.invoice_number,
        client_secret=client_secret,
    )


def _gateway_failure(exc: GatewayError) -> ApiError:
    log.warning("gateway error: %s", exc)
    return ApiError(502, "gateway_error", f"the payment provider refused or failed: {exc.message}")


@router.post("/api/v1/payments/orders", status_code=201, response_model=PaymentOut)
async def create_order(
    request: Request,
    body: OrderIn,
    idempotency_key: str | None = Header(default=None, alias="Idempotency-Key"),
    principal: Principal = Depends(payer),
) -> PaymentOut:
    gateway = _gateway(request, body.provider)
    key = idempotency_key or f"order-{body.booking_id.hex}-{body.provider}"
    factory = request.app.state.session_factory

    def prepare() -> tuple[PaymentOut | None, Any]:
        with scoped_transaction(factory, user_id=principal.user_id) as session:
            existing = service.existing_order(session, principal.user_id, key)
            if existing is not None:
                return _out(session, existing), None
            booking = service.payable_booking(session, principal.user_id, body.booking_id, utcnow())
            session.expunge(booking)
            return None, booking

    existing, booking = await run_in_threadpool(prepare)
    if existing is not None:
        return existing
    try:
        order = await gateway.create_order(
            booking.price_minor,
            booking.currency,
            booking.id.hex,
            {"booking_id": str(booking.id), "tenant_id": str(booking.tenant_id)},
            key,
        )
    except InvalidPaymentRequest as exc:
        raise ApiError(422, "invalid_payment_request", str(exc)) from exc
    except GatewayError as exc:
        raise _gateway_failure(exc) from exc

    def store() -> PaymentOut:
        with factory() as session:
            tenant_scope(session, None, principal.user_id)
            payment = service.store_order(session, booking, order, key)
            return _out(session, payment, order.client_secret)

    return await run_in_threadpool(store)


@router.get("/api/v1/payments/{payment_id}/invoice.pdf", response_class=Response)
def get_invoice_pdf(
    payment_id: uuid.UUID, principal: Principal = Depends(payer), session: Session = Depends(get_session)
) -> Response:
    """The GST invoice of a captured payment, for the payer and the tenant's staff (RLS decides)."""
    tenant_scope(session, principal.tenant_id, principal.user_id)
    payment = service.get_payment(session, payment_id)
    pdf = invoicing.invoice_pdf(session, payment, invoicing.InvoiceSettings())
    headers = {"Content-Disposition": f'inline; filename="{payment.invoice_number}.pdf"'}
    return Response(pdf, media_type="application/pdf", headers=headers)


@router.get("/api/v1/payments/{payment_id}", response_model=PaymentOut)
def get_payment(
    payment_id: uuid.UUID, principal: Principal = Depends(payer), session: Session = Depends(get_session)
) -> PaymentOut:
    tenant_scope(session, principal.tenant_id, principal.user_id)
    return _out(session, service.get_payment(session, payment_id))


async def apply_and_settle(request: Request, event: WebhookEvent) -> service.EventOutcome:
    """Apply an event under platform scope, then send any automatic refund it calls for."""
    factory = request.app.state.session_factory

    def apply() -> service.EventOutcome:
        with factory() as session:
            platform_scope(session)
            return service.apply_event(session, event, utcnow())

    outcome = await run_in_threadpool(apply)
    if outcome.refund is not None:
        try:
            await _send_refund(request, outcome.refund, actor_id=None)
        except ApiError:
            await run_in_threadpool(_forget, factory, event)  # the provider's retry refunds again
            raise
    return outcome


def _forget(factory: Any, event: WebhookEvent) -> None:
    with factory() as session:
        platform_scope(session)
        service.forget_event(session, event.provider, event.event_id)


async def _send_refund(request: Request, due: service.RefundDue, *, actor_id: uuid.UUID | None) -> Payment:
    gateway = _gateway(request, due.provider)
    try:
        refund = await gateway.refund(
            due.provider_payment_id, due.amount_minor, due.reason, due.idempotency_key
        )
    except GatewayError as exc:
        raise _gateway_failure(exc) from exc
    factory = request.app.state.session_factory

    def record() -> Payment:
        with factory() as session:
            platform_scope(session, actor_id)
            payment = service.record_refund(
                session, due.payment_id, refund.refund_id, refund.amount_minor, due.reason
            )
            audit.record(
                session,
                "payment.refund",
                tenant_id=payment.tenant_id,
                actor_id=actor_id,
                target=str(payment.id),
                detail={
                    "amount_minor": refund.amount_minor,
                    "currency": refund.currency,
                    "reason": due.reason,
                    "refund_id": refund.refund_id,
                },
            )
            session.commit()
            return payment

    return await run_in_threadpool(record)


async def _webhook(request: Request, provider: Provider) -> dict[str, str]:
    gateway = _gateway(request, provider)
    raw = await request.body()
    try:
        event = gateway.parse_webhook(raw, request.headers, utcnow())
    except WebhookRejected as exc:
        log.warning("%s webhook rejected: %s", provider, exc.reason)
        raise ApiError(400, "webhook_rejected", exc.reason) from exc
    outcome = await apply_and_settle(request, event)
    if outcome.outcome in ("flagged", "unknown_order"):
        log.warning("%s webhook %s: %s", provider, event.event_id, outcome.outcome)
    return {"status": outcome.outcome}


@router.post("/api/v1/payments/webhooks/razorpay")
async def razorpay_webhook(request: Request) -> dict[str, str]:
    return await _webhook(request, "razorpay")


@router.post("/api/v1/payments/webhooks/stripe")
async def stripe_webhook(request: Request) -> dict[str, str]:
    return await _webhook(request, "stripe")


@router.post("/api/v1/payments/verify", response_model=PaymentOut)
async def verify_checkout(
    request: Request, body: VerifyIn, principal: Principal = Depends(payer)
) -> PaymentOut:
    """The client's checkout callback: confirms sooner; the webhook stays the source of truth."""
    gateway = _gateway(request, body.provider)
    factory = request.app.state.session_factory

    def load() -> Payment | None:
        with scoped_transaction(factory, user_id=principal.user_id) as session:
            return session.scalar(
                select(Payment).where(Payment.provider == body.provider, Payment.order_ref == body.order_ref)
            )

    if await run_in_threadpool(load) is None:
        raise ApiError(404, "not_found", "no order of yours with that reference")
    try:
        checked = await gateway.verify_checkout(CheckoutProof(**body.model_dump(exclude={"provider"})))
    except CheckoutRejected as exc:
        raise ApiError(400, "checkout_rejected", exc.reason) from exc
    except GatewayError as exc:
        raise _gateway_failure(exc) from exc
    if checked.status is CheckoutStatus.PAID:
        event = WebhookEvent(
            provider=body.provider,
            event_id=f"checkout:{checked.payment_id}",
            type=WebhookEventType.PAYMENT_SUCCEEDED,
            provider_type="checkout.verified",
            order_ref=checked.order_ref,
            payment_id=checked.payment_id,
            amount_minor=checked.amount_minor,
            currency=checked.currency,
        )
        await apply_and_settle(request, event)

    def reload() -> PaymentOut:
        with scoped_transaction(factory, user_id=principal.user_id) as session:
            payment = session.scalar(
                select(Payment).where(Payment.provider == body.provider, Payment.order_ref == body.order_ref)
            )
            assert payment is not None
            return _out(session, payment)

    return await run_in_threadpool(reload)


@router.post("/api/v1/payments/{payment_id}/refund", response_model=PaymentOut)
async def staff_refund(
    request: Request, payment_id: uuid.UUID, body: RefundIn, principal: Principal = Depends(desk)
) -> PaymentOut:
    """Staff refund (full or partial) with a reason; audited."""
    factory = request.app.state.session_factory

    def plan() -> service.RefundDue:
        with scoped_transaction(factory, tenant_id=principal.tenant_id) as session:
            payment = service.get_payment(session, payment_id)
            return service.plan_refund(session, payment, body.amount_minor, body.reason)

    due = await run_in_threadpool(plan)
    await _send_refund(request, due, actor_id=principal.user_id)
    return await run_in_threadpool(_reload_out, factory, payment_id)


def _reload_out(factory: Any, payment_id: uuid.UUID) -> PaymentOut:
    with scoped_transaction(factory, platform=True) as session:
        return _out(session, service.get_payment(session, payment_id))


@router.post("/api/v1/payments/bookings/{booking_id}/cancel", response_model=PaymentOut | None)
async def cancel_and_refund(
    request: Request,
    booking_id: uuid.UUID,
    body: CancelIn | None = None,
    principal: Principal = Depends(payer),
) -> PaymentOut | None:
    """Cancel a booking and refund per policy (see `service.cancellation_refund_minor`)."""
    factory = request.app.state.session_factory
    staff = principal.tenant_id is not None and principal.can(Permission.READ_BOOKINGS)
    actor = booking_service.Actor(user_id=principal.user_id, tenant_id=principal.tenant_id, is_staff=staff)

    def cancel() -> tuple[service.RefundDue | None, uuid.UUID | None]:
        now = utcnow()
        with factory() as session:
            tenant_scope(session, principal.tenant_id, principal.user_id)
            payment = service.paid_payment_of_booking(session, booking_id)
            refund_minor = 0
            if payment is not None:
                booking = booking_service.get_booking(session, actor, booking_id)
                refund_minor = service.cancellation_refund_minor(session, booking, payment, now)
            booking_service.cancel_booking(session, actor, booking_id, body.reason if body else "", now)
            if payment is None or refund_minor <= 0:
                return None, payment.id if payment else None
            return service.plan_refund(session, payment, refund_minor, "cancelled_before_cutoff"), payment.id

    due, paid_id = await run_in_threadpool(cancel)
    if due is not None:
        await _send_refund(request, due, actor_id=principal.user_id)
    if paid_id is None:
        return None
    return await run_in_threadpool(_reload_out, factory, paid_id)
