"""Builders for test data of the shared contract."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.passes import PassClaims, PassScope, key_id_for, new_pass_id, short_id

NOW = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)


def make_claims(key: Ed25519PrivateKey, **changes: object) -> PassClaims:
    fields: dict[str, object] = {
        "pass_id": new_pass_id(),
        "library": short_id(uuid.uuid4()),
        "scope": PassScope.SEAT,
        "target": short_id(uuid.uuid4()),
        "holder": short_id(uuid.uuid4()),
        "valid_from": NOW,
        "valid_until": NOW + timedelta(hours=4),
        "issued_at": NOW - timedelta(days=1),
        "key_id": key_id_for(key.public_key()),
    }
    fields.update(changes)
    return PassClaims(**fields)  # type: ignore[arg-type]
