"""Notifications: the transactional outbox and per-user delivery preferences.

Outbox rows of platform-level messages (OTP, registration) have no tenant: tenant_id IS NULL, and
only the platform scope (the worker, auth flows) sees them. UNIQUE NULLS NOT DISTINCT makes the
dedupe key hold for those rows too.

Revision ID: 0400_notifications
Revises: 0001_core
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import context, op

revision: str = "0400_notifications"
down_revision: str | Sequence[str] | None = "0001_core"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = """
CREATE TABLE notification_outbox (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id uuid REFERENCES tenants(id) ON DELETE CASCADE,
  library_id uuid,
  recipient_user_id uuid REFERENCES users(id) ON DELETE SET NULL,
  kind text NOT NULL,
  channel text NOT NULL CHECK (channel IN ('email', 'sms', 'whatsapp', 'push', 'console')),
  recipient text NOT NULL,
  language text NOT NULL DEFAULT 'en',
  library_tz text NOT NULL DEFAULT 'Asia/Kolkata',
  context jsonb NOT NULL DEFAULT '{}'::jsonb,
  dedupe_key text NOT NULL CHECK (length(dedupe_key) BETWEEN 1 AND 200),
  status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'suppressed', 'dead')),
  attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz,
  last_error text,
  provider_message_id text,
  created_at timestamptz NOT NULL DEFAULT now(),
  sent_at timestamptz,
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT notification_outbox_dedupe UNIQUE NULLS NOT DISTINCT (tenant_id, dedupe_key)
);
CREATE INDEX notification_outbox_due ON notification_outbox (next_attempt_at) WHERE status = 'pending';
CREATE INDEX notification_outbox_provider_id ON notification_outbox (provider_message_id)
  WHERE provider_message_id IS NOT NULL;
CREATE TRIGGER notification_outbox_updated_at BEFORE UPDATE ON notification_outbox
  FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE notification_preferences (
  user_id uuid PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
  prefs jsonb NOT NULL DEFAULT '{}'::jsonb,
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER notification_preferences_updated_at BEFORE UPDATE ON notification_preferences
  FOR EACH ROW EXECUTE FUNCTION set_updated_at();

ALTER TABLE notification_outbox ENABLE ROW LEVEL SECURITY;
ALTER TABLE notification_outbox FORCE ROW LEVEL SECURITY;
-- tenant_id IS NULL never equals app_tenant(): platform rows stay invisible to tenant scopes.
-- A user's own messages are theirs too (a student's booking runs in user scope, not tenant scope).
CREATE POLICY notification_outbox_scope ON notification_outbox
  USING (app_platform() OR tenant_id = app_tenant() OR recipient_user_id = app_user())
  WITH CHECK (app_platform() OR tenant_id = app_tenant() OR recipient_user_id = app_user());

ALTER TABLE notification_preferences ENABLE ROW LEVEL SECURITY;
ALTER TABLE notification_preferences FORCE ROW LEVEL SECURITY;
CREATE POLICY notification_preferences_scope ON notification_preferences
  USING (app_platform() OR user_id = app_user())
  WITH CHECK (app_platform() OR user_id = app_user());
"""


# Staff acting on a booking (a cancellation, a cash payment) may not see the holder's account under
# the users policy when the student is no member of their tenant. This reads just the address, and
# only of a user with a booking in the caller's tenant (or the caller themself, or platform scope).
# FORCE RLS applies to the owner too, so the platform flag is raised for this one query and restored.
# plpgsql: `bookings` comes from another migration branch and is resolved at call time.
CONTACT_FUNCTION = """
CREATE FUNCTION notification_contact(p_user uuid, p_tenant uuid)
RETURNS TABLE (email text, full_name text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  v_platform text := coalesce(current_setting('app.platform', true), '');
BEGIN
  PERFORM set_config('app.platform', 'on', true);
  IF v_platform = 'on' OR p_user = nullif(current_setting('app.user_id', true), '')::uuid
     OR (p_tenant IS NOT NULL
         AND p_tenant = nullif(current_setting('app.tenant_id', true), '')::uuid
         AND EXISTS (SELECT 1 FROM bookings b WHERE b.user_id = p_user AND b.tenant_id = p_tenant)) THEN
    RETURN QUERY SELECT u.email, u.full_name FROM users u WHERE u.id = p_user AND u.status = 'active';
  END IF;
  PERFORM set_config('app.platform', v_platform, true);
END $$;
REVOKE ALL ON FUNCTION notification_contact(uuid, uuid) FROM PUBLIC;
"""


def _app_role() -> str:
    role = str(context.config.attributes.get("app_role", "studyspot_app"))
    if not role.replace("_", "").isalnum():
        raise ValueError(f"unsafe role name {role!r}")
    return role


def upgrade() -> None:
    op.execute(SCHEMA)
    op.execute(CONTACT_FUNCTION)
    op.execute(f"GRANT EXECUTE ON FUNCTION notification_contact(uuid, uuid) TO {_app_role()}")


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS notification_contact(uuid, uuid)")
    op.execute("DROP TABLE IF EXISTS notification_preferences, notification_outbox")
