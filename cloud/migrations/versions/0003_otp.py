"""Phone one-time codes for login (HMAC'd code, phone by blind index, 5-minute expiry, 5 attempts).

Revision ID: 0003_otp
Revises: 0002_kyc
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003_otp"
down_revision: str | Sequence[str] | None = "0002_kyc"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE otp_codes (
          id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
          user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
          phone_index text NOT NULL,
          code_hmac text NOT NULL,
          expires_at timestamptz NOT NULL,
          attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
          consumed_at timestamptz,
          created_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX otp_codes_phone_idx ON otp_codes (phone_index, created_at DESC);
        ALTER TABLE otp_codes ENABLE ROW LEVEL SECURITY;
        ALTER TABLE otp_codes FORCE ROW LEVEL SECURITY;
        CREATE POLICY otp_codes_platform ON otp_codes USING (app_platform()) WITH CHECK (app_platform());
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS otp_codes")
