"""Audit chain v2: each row's hash covers a SHA-256 digest of its detail (`detail_sha256`), not the
detail itself, so a retention job can null the detail (PII) and the chain still verifies.

Existing rows are re-hashed, not kept under v1. A v1 hash covers the detail text itself, so a v1
row could never lose its detail without breaking the chain, and the old rows are exactly the ones
retention must purge. Re-hashing is only sound if it cannot launder tampering, so upgrade:
1. verifies every existing chain under v1 and refuses to migrate (raises, nothing changes) when a
   row fails: a broken chain needs a human first;
2. re-links every row under v2 (same order, same fields, digest of the detail);
3. appends an `audit.rehash` row on the platform chain, itself under v2, whose detail names each
   chain's last v1 head, so a v1 head recorded elsewhere before the upgrade still ties to the new
   chains.

The app role still has no UPDATE/DELETE on audit_log. Retention goes through
`audit_purge_detail(before)`, SECURITY DEFINER, which can only null the detail of rows older than
a cutoff that is not in the future, and records the purge on the platform chain itself (so even a
direct call leaves a trace).

Revision ID: 0950_audit_detail_digest
Revises: 0001_core
"""

from __future__ import annotations

from alembic import op

from cloud.migrations import app_role

revision = "0950_audit_detail_digest"
down_revision = "0001_core"
branch_labels = None
depends_on = None

FUNCTIONS = """
CREATE FUNCTION audit_detail_digest(detail jsonb) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT encode(sha256(convert_to(detail::text, 'UTF8')), 'hex')
$$;

CREATE FUNCTION audit_digest_v2(prev text, chain text, tenant uuid, actor uuid, action text, target text,
                                ip text, detail_sha256 text, occurred_at timestamptz)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT encode(sha256(convert_to(concat_ws(chr(31), 'v2', prev, chain, coalesce(tenant::text, ''),
    coalesce(actor::text, ''), action, target, ip, detail_sha256,
    (extract(epoch FROM occurred_at) * 1000000)::bigint::text), 'UTF8')), 'hex')
$$;
"""

REHASH = """
DO $$
DECLARE
  r record;
  v_chain text;
  v_old_prev text;
  v_new_prev text;
  v_new text;
  v_heads jsonb := '{}'::jsonb;
BEGIN
  FOR r IN SELECT * FROM audit_log ORDER BY chain, id LOOP
    IF v_chain IS DISTINCT FROM r.chain THEN
      v_chain := r.chain;
      v_old_prev := repeat('0', 64);
      v_new_prev := repeat('0', 64);
    END IF;
    IF r.prev_hash <> v_old_prev OR r.hash <> audit_digest(r.prev_hash, r.chain, r.tenant_id, r.actor_id,
        r.action, r.target, r.ip, r.detail, r.occurred_at) THEN
      RAISE EXCEPTION 'audit_log row % (chain %) fails verification; investigate before migrating',
        r.id, r.chain;
    END IF;
    v_old_prev := r.hash;
    v_new := audit_digest_v2(v_new_prev, r.chain, r.tenant_id, r.actor_id, r.action, r.target, r.ip,
                             r.detail_sha256, r.occurred_at);
    UPDATE audit_log SET prev_hash = v_new_prev, hash = v_new WHERE id = r.id;
    v_new_prev := v_new;
    v_heads := v_heads || jsonb_build_object(r.chain, r.hash);
  END LOOP;
  IF v_heads <> '{}'::jsonb THEN
    PERFORM audit_append(NULL, NULL, 'audit.rehash', 'scheme:v2', '',
                         jsonb_build_object('previous_heads', v_heads));
  END IF;
END $$;
"""

APPEND_V2 = """
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
  v_detail_sha text := audit_detail_digest(coalesce(p_detail, '{}'::jsonb));
  v_id bigint;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('audit:' || v_chain));
  SELECT hash INTO v_prev FROM audit_log WHERE chain = v_chain ORDER BY id DESC LIMIT 1;
  v_prev := coalesce(v_prev, repeat('0', 64));
  INSERT INTO audit_log (chain, tenant_id, actor_id, action, target, ip, detail, detail_sha256,
                         occurred_at, prev_hash, hash)
  VALUES (v_chain, p_tenant, p_actor, p_action, v_target, v_ip, v_detail, v_detail_sha, v_at, v_prev,
          audit_digest_v2(v_prev, v_chain, p_tenant, p_actor, p_action, v_target, v_ip, v_detail_sha, v_at))
  RETURNING id INTO v_id;
  RETURN v_id;
END $$;

-- Retention: the only change the app may make to existing rows is dropping old details.
CREATE FUNCTION audit_purge_detail(p_before timestamptz) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  v_count bigint;
BEGIN
  IF p_before IS NULL OR p_before > now() THEN
    RAISE EXCEPTION 'audit detail retention cutoff % must not be in the future', p_before
      USING ERRCODE = '22023';
  END IF;
  UPDATE audit_log SET detail = NULL WHERE occurred_at < p_before AND detail IS NOT NULL;
  GET DIAGNOSTICS v_count = ROW_COUNT;
  IF v_count > 0 THEN
    PERFORM audit_append(NULL, NULL, 'audit.purge_detail', '', '',
                         jsonb_build_object('before', p_before, 'rows', v_count));
  END IF;
  RETURN v_count;
END $$;
"""

# Downgrade re-links under v1; purged details come back as {} (their content is gone for good).
REHASH_V1 = """
DO $$
DECLARE
  r record;
  v_chain text;
  v_prev text;
  v_new text;
BEGIN
  UPDATE audit_log SET detail = '{}'::jsonb WHERE detail IS NULL;
  FOR r IN SELECT * FROM audit_log ORDER BY chain, id LOOP
    IF v_chain IS DISTINCT FROM r.chain THEN
      v_chain := r.chain;
      v_prev := repeat('0', 64);
    END IF;
    v_new := audit_digest(v_prev, r.chain, r.tenant_id, r.actor_id, r.action, r.target, r.ip, r.detail,
                          r.occurred_at);
    UPDATE audit_log SET prev_hash = v_prev, hash = v_new WHERE id = r.id;
    v_prev := v_new;
  END LOOP;
END $$;
"""


AUDIT_APPEND = "audit_append(uuid, uuid, text, text, text, jsonb)"
AUDIT_APPEND_V1 = "audit_append_v1(uuid, uuid, text, text, text, jsonb)"


def upgrade() -> None:
    role = app_role()
    op.execute("ALTER TABLE audit_log ADD COLUMN detail_sha256 text")
    op.execute(FUNCTIONS)
    op.execute("UPDATE audit_log SET detail_sha256 = audit_detail_digest(detail)")
    op.execute(
        "ALTER TABLE audit_log ALTER COLUMN detail_sha256 SET NOT NULL, ALTER COLUMN detail DROP NOT NULL"
    )
    # v1 is kept (renamed, executable by the owner only) so that downgrade restores it unchanged
    op.execute(f"ALTER FUNCTION {AUDIT_APPEND} RENAME TO audit_append_v1")
    op.execute(f"REVOKE ALL ON FUNCTION {AUDIT_APPEND_V1} FROM PUBLIC, {role}")
    op.execute(APPEND_V2)
    op.execute(REHASH)
    for function in (AUDIT_APPEND, "audit_purge_detail(timestamptz)"):
        op.execute(f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {function} TO {role}")


def downgrade() -> None:
    op.execute(REHASH_V1)
    op.execute(f"DROP FUNCTION audit_purge_detail(timestamptz), {AUDIT_APPEND}")
    op.execute(f"ALTER FUNCTION {AUDIT_APPEND_V1} RENAME TO audit_append")
    op.execute(f"GRANT EXECUTE ON FUNCTION {AUDIT_APPEND} TO {app_role()}")
    op.execute("ALTER TABLE audit_log DROP COLUMN detail_sha256, ALTER COLUMN detail SET NOT NULL")
    op.execute(
        "DROP FUNCTION audit_digest_v2(text, text, uuid, uuid, text, text, text, text, timestamptz), "
        "audit_detail_digest(jsonb)"
    )
