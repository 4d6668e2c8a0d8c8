"""Refunds planned by conflict resolution, sent to the gateway after the push transaction committed.

A refund that fails stays `due` (with the error) and is retried after the device's next push; the
gateway idempotency key is fixed per conflict, so a retry never refunds twice.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from cloud.db import scoped_transaction
from cloud.desk.models import RefundStatus, SyncConflict
from cloud.errors import ApiError
from cloud.payments import service as payments
from cloud.payments.models import Payment
from cloud.payments.router import _send_refund

MAX_PER_PUSH = 20


def _due(factory: Any, tenant_id: uuid.UUID) -> list[tuple[uuid.UUID, payments.RefundDue]]:
    with scoped_transaction(factory, tenant_id=tenant_id) as session:
        conflicts = session.scalars(
            select(SyncConflict)
            .where(SyncConflict.tenant_id == tenant_id, SyncConflict.refund_status == RefundStatus.DUE.value)
            .order_by(SyncConflict.created_at)
            .limit(MAX_PER_PUSH)
        )
        planned = []
        for conflict in conflicts:
            payment = session.get(Payment, conflict.refund_payment_id)
            if payment is None or not payment.provider_payment_id:
                continue
            due = payments.RefundDue(
                payment_id=payment.id,
                provider=payment.provider,
                provider_payment_id=payment.provider_payment_id,
                amount_minor=conflict.refund_minor,
                reason="seat_conflict",
                idempotency_key=f"conflict-{conflict.id.hex}",
            )
            planned.append((conflict.id, due))
        return planned


def _mark(factory: Any, tenant_id: uuid.UUID, conflict_id: uuid.UUID, error: str | None) -> None:
    with scoped_transaction(factory, tenant_id=tenant_id) as session:
        conflict = session.get(SyncConflict, conflict_id)
        if conflict is not None:
            conflict.refund_error = error
            if error is None:
                conflict.refund_status = RefundStatus.SENT.value


async def send_due_refunds(request: Any, device: Any) -> None:
    """After a push: send the tenant's due conflict refunds through the payments refund path."""
    factory = request.app.state.session_factory
    for conflict_id, due in await run_in_threadpool(_due, factory, device.tenant_id):
        try:
            await _send_refund(request, due, actor_id=None)
        except ApiError as exc:
            await run_in_threadpool(_mark, factory, device.tenant_id, conflict_id, exc.message[:500])
            continue
        await run_in_threadpool(_mark, factory, device.tenant_id, conflict_id, None)
