"""Fleet: edge devices, their signing keys, pushed events (applied at most once), remote commands.

Revision ID: 0200_fleet
Revises: 0001_core
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0200_fleet"
down_revision: str | Sequence[str] | None = "0001_core"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FLEET_TABLES = ("edge_devices", "edge_device_keys", "edge_events", "edge_commands", "edge_telemetry")

SCHEMA = """
CREATE TABLE edge_devices (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  library_id uuid NOT NULL REFERENCES libraries(id) ON DELETE CASCADE,
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
  status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'active', 'revoked')),
  config jsonb NOT NULL DEFAULT '{}'::jsonb,
  enroll_token_hash text UNIQUE,
  enroll_expires_at timestamptz,
  enrolled_at timestamptz,
  revoked_at timestamptz,
  agent_version text NOT NULL DEFAULT '',
  last_seen_at timestamptz,
  queue_depth integer NOT NULL DEFAULT 0,
  dead_letters integer NOT NULL DEFAULT 0,
  clock_skew_seconds double precision,
  events_received bigint NOT NULL DEFAULT 0,
  created_by uuid REFERENCES users(id) ON DELETE SET NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX edge_devices_tenant_idx ON edge_devices (tenant_id);
CREATE INDEX edge_devices_library_idx ON edge_devices (library_id);

CREATE TABLE edge_device_keys (
  key_id text PRIMARY KEY,
  device_id uuid NOT NULL REFERENCES edge_devices(id) ON DELETE CASCADE,
  tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  public_key text NOT NULL,
  status text NOT NULL CHECK (status IN ('active', 'pending', 'retired')),
  created_at timestamptz NOT NULL DEFAULT now(),
  confirmed_at timestamptz,
  retired_at timestamptz,
  UNIQUE (device_id, public_key)
);

CREATE TABLE edge_events (
  id uuid PRIMARY KEY,
  tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  device_id uuid NOT NULL REFERENCES edge_devices(id) ON DELETE CASCADE,
  library_id uuid NOT NULL,
  kind text NOT NULL,
  occurred_at timestamptz NOT NULL,
  payload jsonb NOT NULL DEFAULT '{}'::jsonb,
  received_at timestamptz NOT NULL DEFAULT now(),
  consumed_at timestamptz
);
CREATE INDEX edge_events_device_idx ON edge_events (device_id, received_at);
CREATE INDEX edge_events_unconsumed_idx ON edge_events (tenant_id, kind) WHERE consumed_at IS NULL;
CREATE INDEX edge_events_pass_idx ON edge_events ((payload->>'pass_id'))
  WHERE kind IN ('checkin', 'checkout');

CREATE TABLE edge_commands (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  device_id uuid NOT NULL REFERENCES edge_devices(id) ON DELETE CASCADE,
  kind text NOT NULL CHECK (kind IN ('unlock_door', 'reload_config', 'rotate_key')),
  args jsonb NOT NULL DEFAULT '{}'::jsonb,
  issued_by uuid REFERENCES users(id) ON DELETE SET NULL,
  issued_at timestamptz NOT NULL DEFAULT now(),
  delivered_at timestamptz,
  acked_at timestamptz,
  result jsonb
);
CREATE INDEX edge_commands_pending_idx ON edge_commands (device_id) WHERE acked_at IS NULL;

-- per-minute aggregates pushed by the edge, for analytics (one row per sensor metric and minute)
CREATE TABLE edge_telemetry (
  tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  library_id uuid NOT NULL,
  edge_device_id uuid NOT NULL REFERENCES edge_devices(id) ON DELETE CASCADE,
  sensor text NOT NULL,
  metric text NOT NULL,
  minute timestamptz NOT NULL,
  samples integer NOT NULL CHECK (samples > 0),
  total double precision NOT NULL,
  minimum double precision NOT NULL,
  maximum double precision NOT NULL,
  last double precision NOT NULL,
  PRIMARY KEY (library_id, sensor, metric, minute)
);
CREATE INDEX edge_telemetry_minute_idx ON edge_telemetry (tenant_id, minute);

CREATE TRIGGER edge_devices_updated_at BEFORE UPDATE ON edge_devices
  FOR EACH ROW EXECUTE FUNCTION set_updated_at();
"""


def upgrade() -> None:
    op.execute(SCHEMA)
    for table in FLEET_TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY {table}_scope ON {table} "
            f"USING (app_platform() OR tenant_id = app_tenant()) "
            f"WITH CHECK (app_platform() OR tenant_id = app_tenant())"
        )


def downgrade() -> None:
    op.execute(
        "DROP TABLE IF EXISTS edge_telemetry, edge_commands, edge_events, edge_device_keys, edge_devices"
        " CASCADE"
    )
