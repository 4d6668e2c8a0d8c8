"""Booking extras: recurring/multi-date series, per-user calendar feeds, reminder bookkeeping.

`booking_series` groups the occurrences of one recurring or multi-date request (each occurrence is
its own `bookings` row pointing at it). `calendar_feeds` holds a random feed id per user; the feed
URL's token is that id plus an HMAC under the master key, so a leaked table alone forges no URL.
`calendar_feed_user` lets the unauthenticated feed route find the owner of a feed id without
platform scope. `bookings.reminder_queued_at` marks a booking whose start reminder was queued, so
the minute job looks at each booking once.

Revision ID: 0500_booking_extras
Revises: 0100_catalog_booking
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import context, op

revision: str = "0500_booking_extras"
down_revision: str | Sequence[str] | None = "0100_catalog_booking"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = """
CREATE TABLE booking_series (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  library_id uuid NOT NULL REFERENCES libraries(id) ON DELETE CASCADE,
  user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  plan_id uuid REFERENCES plans(id) ON DELETE SET NULL,
  recurrence jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_by uuid REFERENCES users(id) ON DELETE SET NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX booking_series_user_idx ON booking_series (user_id);

ALTER TABLE bookings ADD COLUMN series_id uuid REFERENCES booking_series(id) ON DELETE SET NULL,
  ADD COLUMN reminder_queued_at timestamptz;
CREATE INDEX bookings_series_idx ON bookings (series_id) WHERE series_id IS NOT NULL;

CREATE TABLE calendar_feeds (
  user_id uuid PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
  feed_id uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
  rotated_at timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION calendar_feed_user(p_feed_id uuid) RETURNS uuid LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = public, pg_temp SET app.platform = 'on' AS $$
  SELECT f.user_id FROM calendar_feeds f WHERE f.feed_id = p_feed_id
$$;
REVOKE ALL ON FUNCTION calendar_feed_user(uuid) FROM PUBLIC;
"""


def _app_role() -> str:
    role = str(context.config.attributes.get("app_role", "studyspot_app"))
    if not role.replace("_", "").isalnum():
        raise ValueError(f"unsafe role name {role!r}")
    return role


def upgrade() -> None:
    op.execute(SCHEMA)
    role = _app_role()
    for table in ("booking_series", "calendar_feeds"):
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {role}")
    # like bookings: the holder sees their series in every tenant, staff those of their tenant
    op.execute(
        "CREATE POLICY booking_series_scope ON booking_series "
        "USING (app_platform() OR tenant_id = app_tenant() OR user_id = app_user()) "
        "WITH CHECK (app_platform() OR tenant_id = app_tenant() OR user_id = app_user())"
    )
    op.execute(
        "CREATE POLICY calendar_feeds_scope ON calendar_feeds "
        "USING (app_platform() OR user_id = app_user()) WITH CHECK (app_platform() OR user_id = app_user())"
    )
    op.execute(f"GRANT EXECUTE ON FUNCTION calendar_feed_user(uuid) TO {role}")


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS calendar_feed_user(uuid)")
    op.execute("DROP TABLE IF EXISTS calendar_feeds")
    op.execute("DROP INDEX IF EXISTS bookings_series_idx")
    op.execute(
        "ALTER TABLE bookings DROP COLUMN IF EXISTS series_id, DROP COLUMN IF EXISTS reminder_queued_at"
    )
    op.execute("DROP TABLE IF EXISTS booking_series")
