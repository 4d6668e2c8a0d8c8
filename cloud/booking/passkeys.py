"""A tenant's current QR-pass signing key (table `pass_signing_keys`, created by 0001_core).

Storage convention (the sync code that publishes public keys to the edge reads the same rows):
`kid` = `shared.passes.key_id_for(public)` (8 hex), `public_key` = `public_key_to_text(public)`,
`private_key_enc` = `cloud.crypto.encrypt(master_key, raw 32-byte seed, associated_data=kid)`.
The newest row with `retired_at IS NULL` signs; a key is created on first use.
"""

from __future__ import annotations

import uuid

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from cloud import crypto
from cloud.tenancy.models import PassSigningKey
from shared.passes import generate_signing_key, key_id_for, public_key_to_text


def current_pass_key(
    session: Session, tenant_id: uuid.UUID, master_key: bytes
) -> tuple[str, Ed25519PrivateKey]:
    """(kid, private key) of the tenant; the session must see the tenant's rows (tenant or platform scope)."""
    # serialise first use per tenant so two concurrent requests do not both create a key
    session.execute(
        text("SELECT pg_advisory_xact_lock(hashtext('pass-key:' || :tenant))"), {"tenant": str(tenant_id)}
    )
    row = session.scalars(
        select(PassSigningKey)
        .where(PassSigningKey.tenant_id == tenant_id, PassSigningKey.retired_at.is_(None))
        .order_by(PassSigningKey.created_at.desc())
    ).first()
    if row is not None:
        raw = crypto.decrypt(master_key, row.private_key_enc, row.kid.encode())
        return row.kid, Ed25519PrivateKey.from_private_bytes(raw)
    return _create_key(session, tenant_id, master_key)


def _create_key(session: Session, tenant_id: uuid.UUID, master_key: bytes) -> tuple[str, Ed25519PrivateKey]:
    private = generate_signing_key()
    kid = key_id_for(private.public_key())
    session.add(
        PassSigningKey(
            kid=kid,
            tenant_id=tenant_id,
            private_key_enc=crypto.encrypt(master_key, private.private_bytes_raw(), kid.encode()),
            public_key=public_key_to_text(private.public_key()),
        )
    )
    session.flush()
    return kid, private
