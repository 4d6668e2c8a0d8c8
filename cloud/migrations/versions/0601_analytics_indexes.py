"""Analytics: indexes for the per-library reads of past bookings, door events and captured payments
(the booking indexes only cover active bookings; analytics reads completed ones).

Revision ID: 0601_analytics_indexes
Revises: 0600_analytics
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0601_analytics_indexes"
down_revision: str | Sequence[str] | None = "0600_analytics"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = ("0100_catalog_booking", "0300_payments")

INDEXES = {
    "bookings_library_checkin_idx": "bookings (library_id, checked_in_at) WHERE checked_in_at IS NOT NULL",
    "bookings_library_start_idx": "bookings (library_id, lower(during))",
    "edge_events_library_kind_idx": "edge_events (library_id, kind, occurred_at)",
    "payments_tenant_captured_idx": "payments (tenant_id, captured_at) WHERE captured_at IS NOT NULL",
}


def upgrade() -> None:
    for name, definition in INDEXES.items():
        op.execute(f"CREATE INDEX {name} ON {definition}")


def downgrade() -> None:
    op.execute(f"DROP INDEX IF EXISTS {', '.join(INDEXES)}")
