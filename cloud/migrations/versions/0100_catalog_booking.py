"""Catalog and booking: library details and rules, zones, plans, bookings, pass revocations.

Revision ID: 0100_catalog_booking
Revises: 0001_core
Create Date: 2026-11-24

No double booking is a database guarantee: an exclusion constraint (btree_gist) over
`(seat_id =, during &&)` for active statuses, with half-open `[start, end)` ranges. Bookings are
visible to their tenant and to the student who holds them. Pass revocations are written by a
trigger whenever a booking with a pass is cancelled, marked no-show, or re-issued (seat/time moved),
so no code path can forget one. `library_busy_seats` lets a student see which seats are taken
(but not by whom) without seeing other students' bookings.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0100_catalog_booking"
down_revision: str | Sequence[str] | None = "0001_core"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACTIVE = "('pending_payment', 'confirmed', 'checked_in')"
ALL_DAY = '{"open": "00:00", "close": "24:00"}'
DEFAULT_HOURS = (
    "{" + ", ".join(f'"{day}": {ALL_DAY}' for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")) + "}"
)

SCHEMA = f"""
CREATE EXTENSION IF NOT EXISTS btree_gist;
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS cube;
CREATE EXTENSION IF NOT EXISTS earthdistance;

ALTER TABLE libraries
  ADD COLUMN description text NOT NULL DEFAULT '',
  ADD COLUMN opening_hours jsonb NOT NULL DEFAULT '{DEFAULT_HOURS}'::jsonb,
  ADD COLUMN closures jsonb NOT NULL DEFAULT '[]'::jsonb,
  ADD COLUMN photos jsonb NOT NULL DEFAULT '[]'::jsonb,
  ADD COLUMN rating numeric(2, 1) CHECK (rating BETWEEN 0 AND 5),
  ADD COLUMN rating_count integer NOT NULL DEFAULT 0
    CHECK (rating_count >= 0),
  ADD COLUMN booking_window_days integer NOT NULL DEFAULT 30
    CHECK (booking_window_days BETWEEN 1 AND 365),
  ADD COLUMN min_duration_minutes integer NOT NULL DEFAULT 60
    CHECK (min_duration_minutes BETWEEN 15 AND 1440),
  ADD COLUMN max_duration_minutes integer NOT NULL DEFAULT 720
    CHECK (max_duration_minutes BETWEEN 15 AND 1440),
  ADD COLUMN max_active_bookings integer NOT NULL DEFAULT 3
    CHECK (max_active_bookings BETWEEN 1 AND 100),
  ADD COLUMN cancel_cutoff_minutes integer NOT NULL DEFAULT 60
    CHECK (cancel_cutoff_minutes BETWEEN 0 AND 10080),
  ADD COLUMN checkin_open_minutes integer NOT NULL DEFAULT 15
    CHECK (checkin_open_minutes BETWEEN 0 AND 240),
  ADD COLUMN no_show_grace_minutes integer NOT NULL DEFAULT 15
    CHECK (no_show_grace_minutes BETWEEN 1 AND 240),
  ADD COLUMN no_show_limit integer NOT NULL DEFAULT 3
    CHECK (no_show_limit BETWEEN 1 AND 100),
  ADD COLUMN no_show_window_days integer NOT NULL DEFAULT 30
    CHECK (no_show_window_days BETWEEN 1 AND 365),
  ADD COLUMN no_show_block_days integer NOT NULL DEFAULT 7
    CHECK (no_show_block_days BETWEEN 0 AND 365),
  ADD COLUMN hold_minutes integer NOT NULL DEFAULT 10
    CHECK (hold_minutes BETWEEN 1 AND 1440),
  ADD COLUMN search_doc tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('simple'::regconfig, coalesce(name, '')), 'A')
    || setweight(to_tsvector('simple'::regconfig, coalesce(address, '')), 'B')) STORED,
  ADD CONSTRAINT libraries_duration_order CHECK (min_duration_minutes <= max_duration_minutes);
CREATE INDEX libraries_search_doc_idx ON libraries USING gin (search_doc);
CREATE INDEX libraries_name_trgm_idx ON libraries USING gin (lower(name) gin_trgm_ops);
CREATE INDEX libraries_earth_idx ON libraries USING gist (ll_to_earth(latitude, longitude))
  WHERE latitude IS NOT NULL AND longitude IS NOT NULL;

CREATE TABLE zones (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  library_id uuid NOT NULL REFERENCES libraries(id) ON DELETE CASCADE,
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
  description text NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (library_id, name)
);
CREATE INDEX zones_tenant_idx ON zones (tenant_id);

ALTER TABLE seats
  ADD COLUMN zone_id uuid REFERENCES zones(id) ON DELETE SET NULL,
  ALTER COLUMN seat_type SET DEFAULT 'open_desk';
CREATE INDEX seats_library_idx ON seats (library_id);
CREATE INDEX seats_zone_idx ON seats (zone_id);

CREATE TABLE plans (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  library_id uuid NOT NULL REFERENCES libraries(id) ON DELETE CASCADE,
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
  kind text NOT NULL CHECK (kind IN ('hourly', 'day_pass', 'monthly')),
  price_minor bigint NOT NULL CHECK (price_minor BETWEEN 0 AND 100000000000),
  currency text NOT NULL CHECK (currency ~ '^[A-Z]{{3}}$'),
  shift_start time,
  shift_end time,
  active boolean NOT NULL DEFAULT true,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CHECK (kind <> 'monthly' OR (shift_start IS NOT NULL AND shift_end IS NOT NULL))
);
CREATE INDEX plans_library_idx ON plans (library_id);

CREATE TABLE subscriptions (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  library_id uuid NOT NULL REFERENCES libraries(id) ON DELETE CASCADE,
  seat_id uuid NOT NULL REFERENCES seats(id) ON DELETE CASCADE,
  user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  plan_id uuid REFERENCES plans(id) ON DELETE SET NULL,
  start_date date NOT NULL,
  end_date date NOT NULL CHECK (end_date > start_date),
  status text NOT NULL CHECK (status IN ('pending_payment', 'active', 'paused', 'cancelled', 'expired')),
  price_minor bigint NOT NULL CHECK (price_minor >= 0),
  currency text NOT NULL CHECK (currency ~ '^[A-Z]{{3}}$'),
  paused_from date,
  paused_until date,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX subscriptions_user_idx ON subscriptions (user_id);

CREATE TABLE bookings (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  library_id uuid NOT NULL REFERENCES libraries(id) ON DELETE CASCADE,
  seat_id uuid NOT NULL REFERENCES seats(id) ON DELETE CASCADE,
  user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  plan_id uuid REFERENCES plans(id) ON DELETE SET NULL,
  kind text NOT NULL CHECK (kind IN ('hourly', 'day_pass', 'subscription')),
  subscription_id uuid REFERENCES subscriptions(id) ON DELETE CASCADE,
  status text NOT NULL CHECK (status IN
    ('pending_payment', 'confirmed', 'checked_in', 'completed', 'cancelled', 'no_show')),
  during tstzrange NOT NULL CHECK (NOT isempty(during) AND lower_inc(during) AND NOT upper_inc(during)
    AND NOT lower_inf(during) AND NOT upper_inf(during)),
  price_minor bigint NOT NULL CHECK (price_minor >= 0),
  currency text NOT NULL CHECK (currency ~ '^[A-Z]{{3}}$'),
  hold_expires_at timestamptz,
  checked_in_at timestamptz,
  cancelled_at timestamptz,
  cancel_reason text,
  pass_id text UNIQUE CHECK (pass_id ~ '^[0-9a-f]{{16}}$'),
  created_by uuid REFERENCES users(id) ON DELETE SET NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT bookings_no_overlap EXCLUDE USING gist (seat_id WITH =, during WITH &&)
    WHERE (status IN {ACTIVE})
);
CREATE INDEX bookings_user_idx ON bookings (user_id, lower(during) DESC);
CREATE INDEX bookings_library_during_idx ON bookings USING gist (library_id, during)
  WHERE (status IN {ACTIVE});
CREATE INDEX bookings_holds_idx ON bookings (hold_expires_at) WHERE status = 'pending_payment';
CREATE INDEX bookings_no_show_idx ON bookings (lower(during)) WHERE status = 'confirmed';

CREATE TABLE revocations (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  library_id uuid NOT NULL REFERENCES libraries(id) ON DELETE CASCADE,
  booking_id uuid REFERENCES bookings(id) ON DELETE SET NULL,
  pass_id text NOT NULL,
  reason text NOT NULL,
  revoked_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX revocations_library_idx ON revocations (library_id, id);

CREATE TABLE waitlist (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  library_id uuid NOT NULL REFERENCES libraries(id) ON DELETE CASCADE,
  user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  plan_id uuid NOT NULL REFERENCES plans(id) ON DELETE CASCADE,
  day date NOT NULL,
  status text NOT NULL DEFAULT 'waiting'
    CHECK (status IN ('waiting', 'offered', 'booked', 'lapsed', 'cancelled')),
  booking_id uuid REFERENCES bookings(id) ON DELETE SET NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX waitlist_one_open_entry ON waitlist (library_id, user_id, day)
  WHERE status IN ('waiting', 'offered');
CREATE INDEX waitlist_queue_idx ON waitlist (library_id, day, created_at) WHERE status = 'waiting';

CREATE FUNCTION bookings_revoke_pass() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public, pg_temp SET app.platform = 'on' AS $$
BEGIN
  IF OLD.pass_id IS NOT NULL AND (NEW.pass_id IS DISTINCT FROM OLD.pass_id
      OR (NEW.status IN ('cancelled', 'no_show') AND OLD.status NOT IN ('cancelled', 'no_show'))) THEN
    INSERT INTO revocations (tenant_id, library_id, booking_id, pass_id, reason)
    VALUES (OLD.tenant_id, OLD.library_id, OLD.id, OLD.pass_id,
            CASE WHEN NEW.status IN ('cancelled', 'no_show') THEN NEW.status ELSE 'reissued' END);
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER bookings_revoke_pass AFTER UPDATE ON bookings
  FOR EACH ROW EXECUTE FUNCTION bookings_revoke_pass();

CREATE FUNCTION library_busy_seats(p_library uuid, p_during tstzrange)
RETURNS TABLE (seat_id uuid, during tstzrange, status text) LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = public, pg_temp SET app.platform = 'on' AS $$
  SELECT b.seat_id, b.during, b.status FROM bookings b
  WHERE b.library_id = p_library AND b.during && p_during AND b.status IN {ACTIVE}
$$;
"""  # noqa: S608 - only module constants are interpolated

PUBLIC_CATALOG = ("zones", "plans")
TENANT_TABLES = ("revocations",)
UPDATED_AT = ("zones", "plans", "bookings", "waitlist", "subscriptions")


def upgrade() -> None:
    op.execute(SCHEMA)
    for table in PUBLIC_CATALOG:
        _enable_rls(table)
        op.execute(f"CREATE POLICY {table}_read ON {table} FOR SELECT USING (true)")
        op.execute(
            f"CREATE POLICY {table}_write ON {table} USING (app_platform() OR tenant_id = app_tenant()) "
            f"WITH CHECK (app_platform() OR tenant_id = app_tenant())"
        )
    for table in TENANT_TABLES:
        _enable_rls(table)
        op.execute(
            f"CREATE POLICY {table}_scope ON {table} USING (app_platform() OR tenant_id = app_tenant()) "
            f"WITH CHECK (app_platform() OR tenant_id = app_tenant())"
        )
    for table in ("bookings", "waitlist", "subscriptions"):
        _enable_rls(table)
        # a student sees and writes their own rows in every tenant
        op.execute(
            f"CREATE POLICY {table}_scope ON {table} "
            "USING (app_platform() OR tenant_id = app_tenant() OR user_id = app_user()) "
            "WITH CHECK (app_platform() OR tenant_id = app_tenant() OR user_id = app_user())"
        )
    for table in UPDATED_AT:
        op.execute(
            f"CREATE TRIGGER {table}_updated_at BEFORE UPDATE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION set_updated_at()"
        )


def _enable_rls(table: str) -> None:
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS library_busy_seats(uuid, tstzrange)")
    op.execute("DROP INDEX IF EXISTS libraries_name_trgm_idx, libraries_earth_idx, seats_library_idx")
    op.execute("DROP TABLE IF EXISTS waitlist, revocations, bookings, subscriptions, plans CASCADE")
    op.execute("DROP FUNCTION IF EXISTS bookings_revoke_pass()")
    op.execute(
        "ALTER TABLE seats DROP COLUMN IF EXISTS zone_id, ALTER COLUMN seat_type SET DEFAULT 'standard'"
    )
    op.execute("DROP TABLE IF EXISTS zones CASCADE")
    op.execute(
        "ALTER TABLE libraries DROP CONSTRAINT IF EXISTS libraries_duration_order, "
        + ", ".join(
            f"DROP COLUMN IF EXISTS {column}"
            for column in (
                "search_doc",
                "description",
                "opening_hours",
                "closures",
                "photos",
                "rating",
                "rating_count",
                "booking_window_days",
                "min_duration_minutes",
                "max_duration_minutes",
                "max_active_bookings",
                "cancel_cutoff_minutes",
                "no_show_limit",
                "no_show_window_days",
                "no_show_block_days",
                "checkin_open_minutes",
                "no_show_grace_minutes",
                "hold_minutes",
            )
        )
    )
