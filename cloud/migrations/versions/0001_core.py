"""Core schema: tenants, users, memberships, libraries, seats, tokens, keys, audit log, RLS.

Revision ID: 0001_core
Revises:
Create Date: 2026-11-24

Row-level security reads three transaction-local settings through helper functions:
`app_tenant()` (app.tenant_id), `app_user()` (app.user_id) and `app_platform()` (app.platform = 'on',
the explicit cross-tenant path). Later migrations: `ENABLE` + `FORCE ROW LEVEL SECURITY` on every
tenant table and a policy `USING (app_platform() OR tenant_id = app_tenant())`.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import context, op

revision: str = "0001_core"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TENANT_TABLES = ("memberships", "pass_signing_keys", "staff_invitations")
CATALOG_TABLES = ("libraries", "seats")

SCHEMA = """
CREATE FUNCTION app_tenant() RETURNS uuid LANGUAGE sql STABLE AS
  $$ SELECT nullif(current_setting('app.tenant_id', true), '')::uuid $$;
CREATE FUNCTION app_user() RETURNS uuid LANGUAGE sql STABLE AS
  $$ SELECT nullif(current_setting('app.user_id', true), '')::uuid $$;
CREATE FUNCTION app_platform() RETURNS boolean LANGUAGE sql STABLE AS
  $$ SELECT coalesce(current_setting('app.platform', true), '') = 'on' $$;

CREATE FUNCTION set_updated_at() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN NEW.updated_at := now(); RETURN NEW; END $$;

CREATE TABLE tenants (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  slug text NOT NULL UNIQUE,
  subscription_plan text NOT NULL DEFAULT 'basic',
  status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  email text NOT NULL,
  phone_enc bytea,                -- AES-256-GCM under the PII key (cloud.crypto.PiiCipher)
  phone_index text,               -- HMAC-SHA256 blind index: lookup without decrypting
  phone_last4 text,               -- for masked display
  full_name text NOT NULL DEFAULT '',
  password_hash text,
  is_super_admin boolean NOT NULL DEFAULT false,
  status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled', 'erased')),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));
CREATE INDEX users_phone_index_idx ON users (phone_index);

CREATE TABLE memberships (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  role text NOT NULL CHECK (role IN ('library_owner', 'library_staff')),
  pin_hash text,
  status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (tenant_id, user_id)
);
CREATE INDEX memberships_user_idx ON memberships (user_id);

CREATE TABLE libraries (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  address text NOT NULL DEFAULT '',
  latitude double precision CHECK (latitude BETWEEN -90 AND 90),
  longitude double precision CHECK (longitude BETWEEN -180 AND 180),
  timezone text NOT NULL,
  capacity integer NOT NULL DEFAULT 0 CHECK (capacity >= 0),
  amenities jsonb NOT NULL DEFAULT '[]'::jsonb,
  status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'inactive')),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX libraries_tenant_idx ON libraries (tenant_id);

CREATE TABLE seats (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  library_id uuid NOT NULL REFERENCES libraries(id) ON DELETE CASCADE,
  label text NOT NULL CHECK (length(label) BETWEEN 1 AND 50),
  zone text NOT NULL DEFAULT '',
  seat_type text NOT NULL DEFAULT 'standard',
  status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'inactive')),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (library_id, label)
);
CREATE INDEX seats_tenant_idx ON seats (tenant_id);

CREATE TABLE refresh_tokens (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  tenant_id uuid REFERENCES tenants(id) ON DELETE CASCADE,
  family_id uuid NOT NULL,
  token_hash text NOT NULL UNIQUE,
  issued_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  used_at timestamptz,
  revoked_at timestamptz
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_idx ON refresh_tokens (user_id);

CREATE TABLE jwt_signing_keys (
  kid text PRIMARY KEY,
  private_key_enc bytea NOT NULL,
  public_jwk jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  retired_at timestamptz
);

CREATE TABLE pass_signing_keys (
  kid text PRIMARY KEY,
  tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  private_key_enc bytea NOT NULL,
  public_key text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  retired_at timestamptz
);
CREATE INDEX pass_signing_keys_tenant_idx ON pass_signing_keys (tenant_id);

CREATE TABLE staff_invitations (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  email text NOT NULL,
  role text NOT NULL CHECK (role IN ('library_owner', 'library_staff')),
  token_hash text NOT NULL UNIQUE,
  invited_by uuid REFERENCES users(id) ON DELETE SET NULL,
  expires_at timestamptz NOT NULL,
  accepted_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE audit_log (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  chain text NOT NULL,
  tenant_id uuid,
  actor_id uuid,
  action text NOT NULL,
  target text NOT NULL DEFAULT '',
  ip text NOT NULL DEFAULT '',
  detail jsonb NOT NULL DEFAULT '{}'::jsonb,
  occurred_at timestamptz NOT NULL,
  prev_hash text NOT NULL,
  hash text NOT NULL
);
CREATE INDEX audit_log_chain_idx ON audit_log (chain, id);

CREATE FUNCTION audit_digest(prev text, chain text, tenant uuid, actor uuid, action text, target text,
                             ip text, detail jsonb, occurred_at timestamptz)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT encode(sha256(convert_to(concat_ws(chr(31), prev, chain, coalesce(tenant::text, ''),
    coalesce(actor::text, ''), action, target, ip, detail::text,
    (extract(epoch FROM occurred_at) * 1000000)::bigint::text), 'UTF8')), 'hex')
$$;

-- The only way to write the audit log. It runs as the owner, which sees the whole chain
-- (audit_log is not FORCE'd), and serialises appends per chain with an advisory lock.
CREATE FUNCTION audit_append(p_tenant uuid, p_actor uuid, p_action text, p_target text, p_ip text,
                             p_detail jsonb)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  v_chain text := coalesce(p_tenant::text, 'platform');
  v_prev text;
  v_at timestamptz := date_trunc('microseconds', clock_timestamp());
  v_target text := coalesce(p_target, '');
  v_ip text := coalesce(p_ip, '');
  v_detail jsonb := coalesce(p_detail, '{}'::jsonb);
  v_id bigint;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('audit:' || v_chain));
  SELECT hash INTO v_prev FROM audit_log WHERE chain = v_chain ORDER BY id DESC LIMIT 1;
  v_prev := coalesce(v_prev, repeat('0', 64));
  INSERT INTO audit_log (chain, tenant_id, actor_id, action, target, ip, detail, occurred_at, prev_hash, hash)
  VALUES (v_chain, p_tenant, p_actor, p_action, v_target, v_ip, v_detail, v_at, v_prev,
          audit_digest(v_prev, v_chain, p_tenant, p_actor, p_action, v_target, v_ip, v_detail, v_at))
  RETURNING id INTO v_id;
  RETURN v_id;
END $$;
"""

POLICIES = """
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenants_scope ON tenants USING (app_platform() OR id = app_tenant());

ALTER TABLE users ENABLE ROW LEVEL SECURITY;
ALTER TABLE users FORCE ROW LEVEL SECURITY;
CREATE POLICY users_read ON users FOR SELECT USING (
  app_platform() OR id = app_user()
  OR EXISTS (SELECT 1 FROM memberships m WHERE m.user_id = users.id AND m.tenant_id = app_tenant()));
CREATE POLICY users_write ON users FOR ALL USING (app_platform() OR id = app_user())
  WITH CHECK (app_platform() OR id = app_user());

ALTER TABLE refresh_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE refresh_tokens FORCE ROW LEVEL SECURITY;
CREATE POLICY refresh_tokens_scope ON refresh_tokens USING (app_platform() OR user_id = app_user());

ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY;
CREATE POLICY audit_log_read ON audit_log FOR SELECT USING (app_platform() OR tenant_id = app_tenant());
"""


def _app_role() -> str:
    role = str(context.config.attributes.get("app_role", "studyspot_app"))
    if not role.replace("_", "").isalnum():
        raise ValueError(f"unsafe role name {role!r}")
    return role


def upgrade() -> None:
    role = _app_role()
    op.execute(
        f"""DO $$ BEGIN
          IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN
            CREATE ROLE {role} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
          END IF;
        END $$"""  # noqa: S608 - role name validated by _app_role
    )
    op.execute(SCHEMA)
    op.execute(POLICIES)
    for table in TENANT_TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        # a member also sees their own memberships across tenants (tenant picker at login)
        extra = " OR user_id = app_user()" if table == "memberships" else ""
        op.execute(
            f"CREATE POLICY {table}_scope ON {table} "
            f"USING (app_platform() OR tenant_id = app_tenant(){extra}) "
            f"WITH CHECK (app_platform() OR tenant_id = app_tenant())"
        )
    for table in CATALOG_TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        # the catalogue is public (students search every tenant); writes stay in the tenant
        op.execute(f"CREATE POLICY {table}_read ON {table} FOR SELECT USING (true)")
        op.execute(
            f"CREATE POLICY {table}_write ON {table} USING (app_platform() OR tenant_id = app_tenant()) "
            f"WITH CHECK (app_platform() OR tenant_id = app_tenant())"
        )
    for table in ("tenants", "users", "memberships", "libraries", "seats"):
        op.execute(
            f"CREATE TRIGGER {table}_updated_at BEFORE UPDATE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION set_updated_at()"
        )
    _grant(role)


def _grant(role: str) -> None:
    op.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
    op.execute(
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON tenants, users, memberships, libraries, seats, "
        f"refresh_tokens, pass_signing_keys, staff_invitations TO {role}"
    )
    op.execute(f"GRANT SELECT, INSERT, UPDATE ON jwt_signing_keys TO {role}")
    op.execute(f"GRANT SELECT ON audit_log TO {role}")
    op.execute("REVOKE ALL ON FUNCTION audit_append(uuid, uuid, text, text, text, jsonb) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION audit_append(uuid, uuid, text, text, text, jsonb) TO {role}")
    # tables and sequences created by later migrations (run by the same owner) are usable by the app
    op.execute(
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role}"
    )
    op.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {role}")


def downgrade() -> None:
    role = _app_role()
    op.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON TABLES FROM {role}")
    op.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON SEQUENCES FROM {role}")
    op.execute(
        "DROP TABLE IF EXISTS audit_log, staff_invitations, pass_signing_keys, jwt_signing_keys, "
        "refresh_tokens, seats, libraries, memberships, users, tenants CASCADE"
    )
    op.execute(
        "DROP FUNCTION IF EXISTS audit_append(uuid, uuid, text, text, text, jsonb), "
        "audit_digest(text, text, uuid, uuid, text, text, text, jsonb, timestamptz), set_updated_at(), "
        "app_platform(), app_user(), app_tenant()"
    )
