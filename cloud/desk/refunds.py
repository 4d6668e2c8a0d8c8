"""Refunds planned by conflict resolution, sent to the gateway after the push transaction committed.

A refund that fails stays `due` (with the error) and is retried after the tenant's next push; the
gateway idempotency key is fixed per conflict, so a retry never refunds twice. A tenant's due refunds
are looked for after a push that planned one (`refund_planned`), after a push while some were left
(failed, or more than MAX_PER_PUSH), and otherwise at most every RECHECK_SECONDS (a refund left by
another worker process): not on every push of a fleet that has none.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from cloud.db import scoped_transaction
from cloud.desk.models import RefundStatus, SyncConflict
from cloud.errors import ApiError
from cloud.payments import service as payments
from cloud.payments.models import Payment
from cloud.payments.router import _send_refund

MAX_PER_PUSH = 20
RECHECK_SECONDS = 60.0
_next_check: dict[uuid.UUID, float] = {}  # tenant → monotonic time its refunds are looked for again


_PLANNED = "desk_refunds_planned"


def refund_planned(session: Session, tenant_id: uuid.UUID) -> None:
    """A refund of this tenant becomes due in `session`'s transaction: once it committed, the next
    push's refund check (this push's own) looks. Before the commit, a concurrent push's check could
    not see the refund yet and must not use up the hint."""
    session.info.setdefault(_PLANNED, set()).add(tenant_id)


@event.listens_for(Session, "after_commit")
def _publish_planned(session: Session) -> None:
    for tenant_id in session.info.pop(_PLANNED, ()):
        _next_check.pop(tenant_id, None)


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
    tenant_id = device.tenant_id
    if _next_check.get(tenant_id, 0.0) > time.monotonic():
        return
    _next_check[tenant_id] = time.monotonic() + RECHECK_SECONDS
    factory = request.app.state.session_factory
    planned = await run_in_threadpool(_due, factory, tenant_id)
    left = len(planned) == MAX_PER_PUSH
    for conflict_id, due in planned:
        try:
            await _send_refund(request, due, actor_id=None)
        except ApiError as exc:
            left = True
            await run_in_threadpool(_mark, factory, tenant_id, conflict_id, exc.message[:500])
            continue
        await run_in_threadpool(_mark, factory, tenant_id, conflict_id, None)
    if left:
        _next_check.pop(tenant_id, None)
