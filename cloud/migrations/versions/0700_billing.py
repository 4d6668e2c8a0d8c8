"""Billing: monthly dues of subscriptions, per-tenant GST settings, credit notes for refunds.

Allows subscription status 'suspended'. Adds `payments.due_id` (a renewal order pays a due) and
`libraries.gst_state_code` (the place of supply of the library's seats; NULL = the tenant's state).

Revision ID: 0700_billing
Revises: 0400_notifications
"""

from __future__ import annotations

from alembic import op

revision = "0700_billing"
down_revision = "0400_notifications"
branch_labels = None
depends_on = ("0100_catalog_booking", "0300_payments")

SCHEMA = """
CREATE TABLE tenant_billing (
  tenant_id uuid PRIMARY KEY REFERENCES tenants(id),
  legal_name text NOT NULL,
  gstin text NOT NULL,
  state_code text NOT NULL CHECK (state_code ~ '^[0-9]{2}$'),
  address text NOT NULL DEFAULT '',
  sac_code text NOT NULL,
  gst_rate_bp integer NOT NULL CHECK (gst_rate_bp BETWEEN 0 AND 2800),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE subscription_dues (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id uuid NOT NULL REFERENCES tenants(id),
  library_id uuid NOT NULL,
  subscription_id uuid NOT NULL REFERENCES subscriptions(id),
  user_id uuid NOT NULL,
  period_start date NOT NULL,
  period_end date NOT NULL CHECK (period_end > period_start),
  amount_minor bigint NOT NULL CHECK (amount_minor >= 0),
  currency text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  due_on date NOT NULL,
  status text NOT NULL CHECK (status IN ('upcoming', 'due', 'overdue', 'suspended', 'paid', 'cancelled')),
  payment_id uuid,
  paid_at timestamptz,
  suspended_at timestamptz,
  last_notice text NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (subscription_id, period_start)
);
CREATE INDEX subscription_dues_open_idx ON subscription_dues (status, due_on)
  WHERE status IN ('upcoming', 'due', 'overdue', 'suspended');
CREATE INDEX subscription_dues_user_idx ON subscription_dues (user_id);

CREATE TABLE credit_note_counters (
  tenant_id uuid PRIMARY KEY REFERENCES tenants(id),
  last_number bigint NOT NULL DEFAULT 0
);

CREATE TABLE credit_notes (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id uuid NOT NULL REFERENCES tenants(id),
  user_id uuid NOT NULL,
  payment_id uuid NOT NULL REFERENCES payments(id),
  refund_id uuid NOT NULL UNIQUE REFERENCES payment_refunds(id),
  number text NOT NULL,
  amount_minor bigint NOT NULL CHECK (amount_minor > 0),
  currency text NOT NULL,
  issued_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (tenant_id, number)
);
CREATE INDEX credit_notes_payment_idx ON credit_notes (payment_id);

ALTER TABLE payments ADD COLUMN due_id uuid REFERENCES subscription_dues(id);
ALTER TABLE libraries ADD COLUMN gst_state_code text CHECK (gst_state_code ~ '^[0-9]{2}$');

ALTER TABLE subscriptions DROP CONSTRAINT subscriptions_status_check;
ALTER TABLE subscriptions ADD CONSTRAINT subscriptions_status_check
  CHECK (status IN ('pending_payment', 'active', 'paused', 'cancelled', 'expired', 'suspended'));
"""

# (table, USING clause): the student sees their own dues and credit notes, staff their tenant's.
POLICIES = (
    ("tenant_billing", "app_platform() OR tenant_id = app_tenant()"),
    ("subscription_dues", "app_platform() OR tenant_id = app_tenant() OR user_id = app_user()"),
    ("credit_note_counters", "app_platform() OR tenant_id = app_tenant()"),
    ("credit_notes", "app_platform() OR tenant_id = app_tenant() OR user_id = app_user()"),
)


def upgrade() -> None:
    op.execute(SCHEMA)
    for table, clause in POLICIES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY {table}_scope ON {table} USING ({clause}) WITH CHECK ({clause})")
    # the supplier's registration is printed on the invoices its payers download
    op.execute(
        "CREATE POLICY tenant_billing_payer_read ON tenant_billing FOR SELECT USING (EXISTS "
        "(SELECT 1 FROM payments p WHERE p.tenant_id = tenant_billing.tenant_id AND p.user_id = app_user()))"
    )
    for table in ("tenant_billing", "subscription_dues"):
        op.execute(
            f"CREATE TRIGGER {table}_updated_at BEFORE UPDATE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION set_updated_at()"
        )


def downgrade() -> None:
    op.execute("UPDATE subscriptions SET status = 'cancelled' WHERE status = 'suspended'")
    op.execute("ALTER TABLE subscriptions DROP CONSTRAINT subscriptions_status_check")
    op.execute(
        "ALTER TABLE subscriptions ADD CONSTRAINT subscriptions_status_check "
        "CHECK (status IN ('pending_payment', 'active', 'paused', 'cancelled', 'expired'))"
    )
    op.execute("ALTER TABLE libraries DROP COLUMN IF EXISTS gst_state_code")
    op.execute("ALTER TABLE payments DROP COLUMN IF EXISTS due_id")
    op.execute("DROP TABLE IF EXISTS credit_notes, credit_note_counters, subscription_dues, tenant_billing")
