"""Per-tenant Ed25519 keys that sign QR passes (shared.passes).

The private half is stored AES-256-GCM encrypted under the master key (associated data: the key
id), in `pass_signing_keys`, a tenant table under row-level security. Retired keys keep verifying
(their passes may still be valid) and are served to the edge with the active one.
"""

from __future__ import annotations

import uuid

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from cloud import crypto
from cloud.models_common import utcnow
from cloud.tenancy.models import PassSigningKey
from shared.passes import generate_signing_key, key_id_for, public_key_from_text, public_key_to_text


def create_pass_key(session: Session, tenant_id: uuid.UUID, master_key: bytes) -> str:
    while True:
        private = generate_signing_key()
        kid = key_id_for(private.public_key())
        if session.get(PassSigningKey, kid) is None:  # 32-bit ids: regenerate on the rare clash
            break
    session.add(
        PassSigningKey(
            kid=kid,
            tenant_id=tenant_id,
            private_key_enc=crypto.encrypt(master_key, private.private_bytes_raw(), kid.encode()),
            public_key=public_key_to_text(private.public_key()),
        )
    )
    session.flush()
    return kid


def _active_row(session: Session, tenant_id: uuid.UUID) -> PassSigningKey | None:
    return session.scalars(
        select(PassSigningKey)
        .where(PassSigningKey.tenant_id == tenant_id, PassSigningKey.retired_at.is_(None))
        .order_by(PassSigningKey.created_at.desc())
    ).first()


def current_pass_key(
    session: Session, tenant_id: uuid.UUID, master_key: bytes
) -> tuple[str, Ed25519PrivateKey]:
    """The tenant's active signing key (created on first use): (key id, private key)."""
    row = _active_row(session, tenant_id)
    if row is None:
        # concurrent first uses create one key, not two
        session.execute(
            text("SELECT pg_advisory_xact_lock(hashtext('pass-key:' || :tenant))"), {"tenant": str(tenant_id)}
        )
        row = _active_row(session, tenant_id)
    if row is None:
        create_pass_key(session, tenant_id, master_key)
        row = _active_row(session, tenant_id)
        assert row is not None
    raw = crypto.decrypt(master_key, row.private_key_enc, row.kid.encode())
    return row.kid, Ed25519PrivateKey.from_private_bytes(raw)


def pass_public_keys(session: Session, tenant_id: uuid.UUID) -> dict[str, Ed25519PublicKey]:
    """Every public key of the tenant (active and retired) by key id, for `verify_pass`."""
    rows = session.scalars(select(PassSigningKey).where(PassSigningKey.tenant_id == tenant_id))
    return {row.kid: public_key_from_text(row.public_key) for row in rows}


def pass_public_keys_text(session: Session, tenant_id: uuid.UUID) -> dict[str, str]:
    """Same as `pass_public_keys`, as base64url text (the sync `pass_keys` field; every pull sends it,
    so only the two columns are read)."""
    query = select(PassSigningKey.kid, PassSigningKey.public_key).where(PassSigningKey.tenant_id == tenant_id)
    return {kid: public_key for kid, public_key in session.execute(query).tuples()}


def rotate_pass_key(session: Session, tenant_id: uuid.UUID, master_key: bytes) -> str:
    for row in session.scalars(
        select(PassSigningKey).where(
            PassSigningKey.tenant_id == tenant_id, PassSigningKey.retired_at.is_(None)
        )
    ):
        row.retired_at = utcnow()
    return create_pass_key(session, tenant_id, master_key)
