"""Analytics: hourly roll-up of the per-minute edge telemetry (issue 6 §7 "rolled up by day").

Revision ID: 0600_analytics
Revises: 0200_fleet
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0600_analytics"
down_revision: str | Sequence[str] | None = "0200_fleet"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = """
CREATE TABLE telemetry_hourly (
  tenant_id uuid NOT NULL REFERENCES tenants(id),
  library_id uuid NOT NULL,
  sensor text NOT NULL,
  metric text NOT NULL,
  hour timestamptz NOT NULL,
  minutes integer NOT NULL,
  samples integer NOT NULL,
  total double precision NOT NULL,
  minimum double precision NOT NULL,
  maximum double precision NOT NULL,
  last double precision NOT NULL,
  increase double precision NOT NULL,
  PRIMARY KEY (library_id, sensor, metric, hour)
);
CREATE INDEX telemetry_hourly_tenant_hour_idx ON telemetry_hourly (tenant_id, hour);
"""


def upgrade() -> None:
    op.execute(SCHEMA)
    op.execute("ALTER TABLE telemetry_hourly ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE telemetry_hourly FORCE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY telemetry_hourly_scope ON telemetry_hourly "
        "USING (app_platform() OR tenant_id = app_tenant()) "
        "WITH CHECK (app_platform() OR tenant_id = app_tenant())"
    )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS telemetry_hourly CASCADE")
