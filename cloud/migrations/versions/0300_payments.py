"""Payments: one row per gateway order, refunds, webhook dedupe, per-tenant invoice counters.

Revision ID: 0300_payments
Revises: 0001_core
"""

from __future__ import annotations

from alembic import op

revision = "0300_payments"
down_revision = "0001_core"
branch_labels = None
depends_on = None

SCHEMA = """
CREATE TABLE payments (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id uuid NOT NULL REFERENCES tenants(id),
  user_id uuid NOT NULL,
  booking_id uuid NOT NULL,
  provider text NOT NULL CHECK (provider IN ('razorpay', 'stripe')),
  order_ref text NOT NULL,
  provider_payment_id text,
  amount_minor bigint NOT NULL CHECK (amount_minor > 0),
  currency text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  status text NOT NULL,
  captured_minor bigint NOT NULL DEFAULT 0,
  flag_reason text,
  failure_reason text,
  idempotency_key text NOT NULL,
  invoice_number text,
  captured_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (provider, order_ref),
  UNIQUE (user_id, idempotency_key),
  UNIQUE (tenant_id, invoice_number)
);
CREATE INDEX payments_booking_idx ON payments (booking_id);

CREATE TABLE payment_refunds (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id uuid NOT NULL REFERENCES tenants(id),
  user_id uuid NOT NULL,
  payment_id uuid NOT NULL REFERENCES payments(id),
  provider_refund_id text NOT NULL,
  amount_minor bigint NOT NULL CHECK (amount_minor > 0),
  reason text NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (payment_id, provider_refund_id)
);

CREATE TABLE payment_webhook_events (
  provider text NOT NULL,
  event_id text NOT NULL,
  tenant_id uuid,
  event_type text NOT NULL,
  outcome text NOT NULL DEFAULT '',
  received_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (provider, event_id)
);

CREATE TABLE invoice_counters (
  tenant_id uuid PRIMARY KEY REFERENCES tenants(id),
  last_number bigint NOT NULL DEFAULT 0
);
"""


def upgrade() -> None:
    op.execute(SCHEMA)
    for table in ("payments", "payment_refunds"):
        _enable_rls(table)
        op.execute(
            f"CREATE POLICY {table}_scope ON {table} "
            "USING (app_platform() OR tenant_id = app_tenant() OR user_id = app_user()) "
            "WITH CHECK (app_platform() OR tenant_id = app_tenant() OR user_id = app_user())"
        )
    _enable_rls("invoice_counters")
    op.execute(
        "CREATE POLICY invoice_counters_scope ON invoice_counters "
        "USING (app_platform() OR tenant_id = app_tenant()) "
        "WITH CHECK (app_platform() OR tenant_id = app_tenant())"
    )
    _enable_rls("payment_webhook_events")  # only the webhook handlers (platform scope) touch it
    op.execute(
        "CREATE POLICY payment_webhook_events_scope ON payment_webhook_events "
        "USING (app_platform()) WITH CHECK (app_platform())"
    )
    op.execute(
        "CREATE TRIGGER payments_updated_at BEFORE UPDATE ON payments "
        "FOR EACH ROW EXECUTE FUNCTION set_updated_at()"
    )


def _enable_rls(table: str) -> None:
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS payment_refunds, payment_webhook_events, invoice_counters, payments")
