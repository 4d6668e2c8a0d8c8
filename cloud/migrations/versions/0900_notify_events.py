"""Notification events: push device tokens per user and owner announcements per library.

`notification_device_tokens` is the device-token counterpart of `notification_contact`: staff of a
tenant (an edge alert in the device's tenant scope, an owner's announcement) may read the push
tokens of their tenant's members and of students with a booking in the tenant, nobody else's.

Revision ID: 0900_notify_events
Revises: 0400_notifications
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import context, op

revision: str = "0900_notify_events"
down_revision: str | Sequence[str] | None = "0400_notifications"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = """
CREATE TABLE push_tokens (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  token text NOT NULL CHECK (length(token) BETWEEN 20 AND 4096),
  platform text NOT NULL CHECK (platform IN ('android', 'ios', 'web')),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (user_id, token)
);
CREATE TRIGGER push_tokens_updated_at BEFORE UPDATE ON push_tokens
  FOR EACH ROW EXECUTE FUNCTION set_updated_at();
ALTER TABLE push_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE push_tokens FORCE ROW LEVEL SECURITY;
CREATE POLICY push_tokens_scope ON push_tokens
  USING (app_platform() OR user_id = app_user())
  WITH CHECK (app_platform() OR user_id = app_user());

CREATE TABLE announcements (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  library_id uuid NOT NULL REFERENCES libraries(id) ON DELETE CASCADE,
  author_id uuid REFERENCES users(id) ON DELETE SET NULL,
  subject text NOT NULL CHECK (length(subject) BETWEEN 1 AND 200),
  message text NOT NULL CHECK (length(message) BETWEEN 1 AND 2000),
  translations jsonb NOT NULL DEFAULT '{}'::jsonb,
  recipients integer NOT NULL DEFAULT 0 CHECK (recipients >= 0),
  messages integer NOT NULL DEFAULT 0 CHECK (messages >= 0),
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX announcements_library_idx ON announcements (library_id, created_at DESC);
ALTER TABLE announcements ENABLE ROW LEVEL SECURITY;
ALTER TABLE announcements FORCE ROW LEVEL SECURITY;
CREATE POLICY announcements_scope ON announcements
  USING (app_platform() OR tenant_id = app_tenant())
  WITH CHECK (app_platform() OR tenant_id = app_tenant());
"""

# Same shape and guard as notification_contact (0400), widened to the tenant's staff.
TOKENS_FUNCTION = """
CREATE FUNCTION notification_device_tokens(p_user uuid, p_tenant uuid)
RETURNS TABLE (token text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  v_platform text := coalesce(current_setting('app.platform', true), '');
BEGIN
  PERFORM set_config('app.platform', 'on', true);
  IF v_platform = 'on' OR p_user = nullif(current_setting('app.user_id', true), '')::uuid
     OR (p_tenant IS NOT NULL
         AND p_tenant = nullif(current_setting('app.tenant_id', true), '')::uuid
         AND (EXISTS (SELECT 1 FROM bookings b WHERE b.user_id = p_user AND b.tenant_id = p_tenant)
              OR EXISTS (SELECT 1 FROM memberships m WHERE m.user_id = p_user AND m.tenant_id = p_tenant
                         AND m.status = 'active'))) THEN
    RETURN QUERY SELECT t.token FROM push_tokens t WHERE t.user_id = p_user ORDER BY t.created_at;
  END IF;
  PERFORM set_config('app.platform', v_platform, true);
END $$;
REVOKE ALL ON FUNCTION notification_device_tokens(uuid, uuid) FROM PUBLIC;
"""


def _app_role() -> str:
    role = str(context.config.attributes.get("app_role", "studyspot_app"))
    if not role.replace("_", "").isalnum():
        raise ValueError(f"unsafe role name {role!r}")
    return role


def upgrade() -> None:
    role = _app_role()
    op.execute(SCHEMA)
    op.execute(TOKENS_FUNCTION)
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON push_tokens, announcements TO {role}")
    op.execute(f"GRANT EXECUTE ON FUNCTION notification_device_tokens(uuid, uuid) TO {role}")


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS notification_device_tokens(uuid, uuid)")
    op.execute("DROP TABLE IF EXISTS announcements, push_tokens")
