"""Desk sales: cash/UPI payments taken at the kiosk (columns on `payments`) and the sync conflicts
between walk-ins sold offline and bookings made online meanwhile.

Revision ID: 0800_desk_sales
Revises: 0300_payments
"""

from __future__ import annotations

from alembic import op

revision = "0800_desk_sales"
down_revision = "0300_payments"
branch_labels = None
depends_on = ("0100_catalog_booking", "0200_fleet")

SCHEMA = """
ALTER TABLE payments DROP CONSTRAINT IF EXISTS payments_provider_check;
ALTER TABLE payments ADD CONSTRAINT payments_provider_check
  CHECK (provider IN ('razorpay', 'stripe', 'desk'));
ALTER TABLE payments
  ADD COLUMN method text NOT NULL DEFAULT 'online' CHECK (method IN ('online', 'cash', 'upi')),
  ADD COLUMN receipt_number text,
  ADD COLUMN recorded_by uuid,
  ADD COLUMN edge_device_id uuid,
  ADD COLUMN upi_ref text,
  ADD COLUMN customer_name text,
  ADD COLUMN customer_phone text,
  ADD CONSTRAINT payments_desk_receipt_unique UNIQUE (tenant_id, edge_device_id, receipt_number);

CREATE TABLE sync_conflicts (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id uuid NOT NULL REFERENCES tenants(id),
  library_id uuid NOT NULL,
  edge_device_id uuid NOT NULL,
  event_id uuid NOT NULL,
  receipt_number text NOT NULL,
  seat_id uuid NOT NULL,
  walkin_booking_id uuid NOT NULL,
  other_booking_id uuid NOT NULL,
  outcome text NOT NULL CHECK (outcome IN ('moved', 'cancelled', 'walkin_moved', 'walkin_unseated')),
  moved_to_seat_id uuid,
  refund_payment_id uuid,
  refund_minor bigint NOT NULL DEFAULT 0,
  currency text NOT NULL,
  refund_status text NOT NULL DEFAULT 'none' CHECK (refund_status IN ('none', 'due', 'sent', 'manual')),
  refund_error text,
  occurred_at timestamptz NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (event_id, other_booking_id)
);
CREATE INDEX sync_conflicts_tenant_idx ON sync_conflicts (tenant_id, created_at DESC);
CREATE INDEX sync_conflicts_refund_due_idx ON sync_conflicts (tenant_id) WHERE refund_status = 'due';
CREATE TRIGGER sync_conflicts_updated_at BEFORE UPDATE ON sync_conflicts
  FOR EACH ROW EXECUTE FUNCTION set_updated_at();
"""


def upgrade() -> None:
    op.execute(SCHEMA)
    op.execute("ALTER TABLE sync_conflicts ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE sync_conflicts FORCE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY sync_conflicts_scope ON sync_conflicts "
        "USING (app_platform() OR tenant_id = app_tenant()) "
        "WITH CHECK (app_platform() OR tenant_id = app_tenant())"
    )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS sync_conflicts")
    op.execute(
        "ALTER TABLE payments DROP CONSTRAINT IF EXISTS payments_desk_receipt_unique,"
        " DROP COLUMN IF EXISTS method, DROP COLUMN IF EXISTS receipt_number,"
        " DROP COLUMN IF EXISTS recorded_by, DROP COLUMN IF EXISTS edge_device_id,"
        " DROP COLUMN IF EXISTS upi_ref, DROP COLUMN IF EXISTS customer_name,"
        " DROP COLUMN IF EXISTS customer_phone, DROP CONSTRAINT IF EXISTS payments_provider_check"
    )
    op.execute(
        "ALTER TABLE payments ADD CONSTRAINT payments_provider_check"
        " CHECK (provider IN ('razorpay', 'stripe'))"
    )
