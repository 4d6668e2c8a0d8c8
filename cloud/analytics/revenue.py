"""Revenue reports (issue 7 §7) and the platform overview: captured payments minus refunds.

A payment counts on the local date (library's zone) it was captured, a refund on the local date it
was made, so a day's or month's net is what the till saw that day. Flagged payments (amount mismatch,
waiting for a human) and uncaptured orders are not revenue. Amounts are integer minor units, one row
per key and currency (never summed across currencies).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from cloud.analytics.schemas import RevenueGroup, RevenueOut, RevenueRow, TenantRevenue
from cloud.errors import ApiError

MAX_RANGE_DAYS = 3 * 366
CSV_COLUMNS = ("key", "label", "currency", "payments", "gross_minor", "refunds_minor", "net_minor")
REVENUE_STATUSES = ("captured", "partially_refunded", "refunded")

_KEYS: dict[RevenueGroup, tuple[str, str]] = {
    RevenueGroup.MONTH: ("to_char(e.day, 'YYYY-MM')", "to_char(e.day, 'FMMonth YYYY')"),
    RevenueGroup.DAY: ("to_char(e.day, 'YYYY-MM-DD')", "to_char(e.day, 'YYYY-MM-DD')"),
    RevenueGroup.LIBRARY: ("coalesce(CAST(e.library_id AS text), '')", "coalesce(l.name, 'No library')"),
    RevenueGroup.PLAN: ("coalesce(CAST(e.plan_id AS text), '')", "coalesce(pl.name, 'No plan')"),
    RevenueGroup.METHOD: ("e.method", "e.method"),
}


def has_method_column(session: Session) -> bool:
    """Desk sales add `payments.method` (online|cash|upi); before that every payment is online."""
    query = text(
        "SELECT EXISTS (SELECT 1 FROM information_schema.columns"
        " WHERE table_name = 'payments' AND column_name = 'method')"
    )
    return bool(session.execute(query).scalar())


def _events_sql(method: str) -> str:
    money = """
      SELECT p.tenant_id, b.library_id, b.plan_id, {method} AS method, p.currency,
             CAST(({at} AT TIME ZONE coalesce(lib.timezone, 'UTC')) AS date) AS day,
             {payments} AS payments, {gross} AS gross, {refunds} AS refunds
      FROM {source}
      LEFT JOIN bookings b ON b.id = p.booking_id LEFT JOIN libraries lib ON lib.id = b.library_id
      WHERE {where}
    """
    statuses = ", ".join(f"'{status}'" for status in REVENUE_STATUSES)
    captured = money.format(
        method=method, at="p.captured_at", payments="1", gross="p.captured_minor", refunds="0",
        source="payments p", where=f"p.captured_at IS NOT NULL AND p.status IN ({statuses})",
    )  # fmt: skip
    refunded = money.format(
        method=method, at="r.created_at", payments="0", gross="0", refunds="r.amount_minor",
        source="payment_refunds r JOIN payments p ON p.id = r.payment_id", where="true",
    )  # fmt: skip
    return f"{captured} UNION ALL {refunded}"


def revenue(
    session: Session,
    *,
    group_by: RevenueGroup,
    start: dt.date,
    end: dt.date,
    tenant_id: uuid.UUID | None,
    library_id: uuid.UUID | None,
) -> RevenueOut:
    """Rows of the session's scope (RLS), optionally narrowed to a tenant and a library."""
    if end < start:
        raise ApiError(422, "invalid_range", "'from' must not be after 'to'")
    if (end - start).days > MAX_RANGE_DAYS:
        raise ApiError(422, "invalid_range", f"a report spans at most {MAX_RANGE_DAYS} days")
    method = "p.method" if has_method_column(session) else "'online'"
    key, label = _KEYS[group_by]
    query = text(
        f"""
        WITH e AS ({_events_sql(method)})
        SELECT {key} AS key, min({label}) AS label, e.currency, sum(e.payments) AS payments,
               sum(e.gross) AS gross, sum(e.refunds) AS refunds
        FROM e LEFT JOIN libraries l ON l.id = e.library_id LEFT JOIN plans pl ON pl.id = e.plan_id
        WHERE e.day BETWEEN :start AND :end
          AND (CAST(:tenant AS uuid) IS NULL OR e.tenant_id = CAST(:tenant AS uuid))
          AND (CAST(:library AS uuid) IS NULL OR e.library_id = CAST(:library AS uuid))
        GROUP BY {key}, e.currency ORDER BY {key}, e.currency
        """  # noqa: S608 - only module constants are interpolated
    )
    params = {"start": start, "end": end, "tenant": tenant_id, "library": library_id}
    rows = [_row(row) for row in session.execute(query, params)]
    return RevenueOut(group_by=group_by, from_=start, to=end, rows=rows)


def _row(row: Any) -> RevenueRow:
    gross, refunds = int(row.gross), int(row.refunds)
    return RevenueRow(
        key=row.key,
        label=row.label,
        currency=row.currency,
        payments=int(row.payments),
        gross_minor=gross,
        refunds_minor=refunds,
        net_minor=gross - refunds,
    )


def revenue_csv(report: RevenueOut) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in report.rows:
        writer.writerow([getattr(row, column) for column in CSV_COLUMNS])
    return buffer.getvalue()


_NET_BY_TENANT = text(
    """
    WITH e AS (
      SELECT tenant_id, currency, captured_minor AS amount FROM payments
      WHERE captured_at IS NOT NULL AND status IN ('captured', 'partially_refunded', 'refunded')
      UNION ALL
      SELECT p.tenant_id, p.currency, -r.amount_minor
      FROM payment_refunds r JOIN payments p ON p.id = r.payment_id
    )
    SELECT t.id, t.name, e.currency, sum(e.amount) AS net FROM e JOIN tenants t ON t.id = e.tenant_id
    GROUP BY t.id, t.name, e.currency ORDER BY t.name, e.currency
    """
)


def net_by_tenant(session: Session) -> list[TenantRevenue]:
    """All-time net revenue of every tenant visible in the session (the platform scope: all)."""
    return [
        TenantRevenue(tenant_id=row.id, tenant_name=row.name, currency=row.currency, net_minor=int(row.net))
        for row in session.execute(_NET_BY_TENANT)
    ]
