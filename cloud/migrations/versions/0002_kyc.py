"""KYC documents (encrypted files on disk, encrypted document number in the row).

Revision ID: 0002_kyc
Revises: 0001_core
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002_kyc"
down_revision: str | Sequence[str] | None = "0001_core"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE kyc_documents (
          id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
          user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
          tenant_id uuid REFERENCES tenants(id) ON DELETE SET NULL,
          document_type text NOT NULL CHECK (document_type IN ('aadhaar', 'pan', 'passport',
            'driving_licence', 'student_id', 'other')),
          document_number_enc bytea NOT NULL,
          document_number_last4 text NOT NULL,
          content_type text NOT NULL CHECK (content_type IN ('application/pdf', 'image/jpeg', 'image/png')),
          size_bytes integer NOT NULL CHECK (size_bytes > 0),
          storage_key text NOT NULL UNIQUE,
          status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'verified', 'rejected')),
          reason text,
          reviewed_by uuid REFERENCES users(id) ON DELETE SET NULL,
          reviewed_at timestamptz,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX kyc_documents_user_idx ON kyc_documents (user_id);
        CREATE INDEX kyc_documents_tenant_idx ON kyc_documents (tenant_id, status);
        CREATE TRIGGER kyc_documents_updated_at BEFORE UPDATE ON kyc_documents
          FOR EACH ROW EXECUTE FUNCTION set_updated_at();
        ALTER TABLE kyc_documents ENABLE ROW LEVEL SECURITY;
        ALTER TABLE kyc_documents FORCE ROW LEVEL SECURITY;
        -- the student sees their own documents; staff of the tenant they were submitted to review them
        CREATE POLICY kyc_documents_scope ON kyc_documents
          USING (app_platform() OR user_id = app_user() OR tenant_id = app_tenant())
          WITH CHECK (app_platform() OR user_id = app_user() OR tenant_id = app_tenant());
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS kyc_documents")
