"""GDPR: export my data, erase me (pseudonymise PII, keep financial records), retention purge.

Other domains add their part of an export with `register_exporter(name, fn)`; `fn(session,
user_id)` runs under a platform scope and returns JSON-able data about that user only.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import delete, select, text, update
from sqlalchemy.orm import Session

from cloud.audit import service as audit
from cloud.crypto import PiiCipher
from cloud.errors import ApiError
from cloud.identity.models import RefreshToken, User
from cloud.identity.otp import OtpCode
from cloud.identity.passwords import verify_password
from cloud.identity.service import read_phone
from cloud.models_common import utcnow
from cloud.tenancy.models import Membership, StaffInvitation

Exporter = Callable[[Session, uuid.UUID], Any]
EXPORTERS: dict[str, Exporter] = {}
REFRESH_TOKEN_RETENTION = dt.timedelta(days=30)
OTP_RETENTION = dt.timedelta(days=1)
AUDIT_DETAIL_RETENTION = dt.timedelta(days=365)


def register_exporter(name: str, exporter: Exporter) -> None:
    EXPORTERS[name] = exporter


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def export_user(session: Session, pii: PiiCipher, user_id: uuid.UUID, ip: str) -> dict[str, Any]:
    """Everything we hold about the user (caller holds a platform scope)."""
    user = session.get(User, user_id)
    if user is None or user.status == "erased":
        raise ApiError(404, "not_found", "user not found")
    memberships = session.scalars(select(Membership).where(Membership.user_id == user_id)).all()
    sessions = session.scalars(select(RefreshToken).where(RefreshToken.user_id == user_id)).all()
    activity = session.execute(
        text("SELECT action, target, ip, occurred_at FROM audit_log WHERE actor_id = :u ORDER BY id"),
        {"u": user_id},
    ).all()
    data: dict[str, Any] = {
        "exported_at": utcnow().isoformat(),
        "profile": {
            "id": str(user.id),
            "email": user.email,
            "phone": read_phone(user, pii),
            "full_name": user.full_name,
            "status": user.status,
            "created_at": _iso(user.created_at),
        },
        "memberships": [
            {"tenant_id": str(m.tenant_id), "role": m.role, "status": m.status, "since": _iso(m.created_at)}
            for m in memberships
        ],
        "sessions": [
            {
                "issued_at": _iso(t.issued_at),
                "expires_at": _iso(t.expires_at),
                "revoked_at": _iso(t.revoked_at),
            }
            for t in sessions
        ],
        "activity": [
            {"action": a.action, "target": a.target, "ip": a.ip, "at": _iso(a.occurred_at)} for a in activity
        ],
    }
    for name, exporter in EXPORTERS.items():
        data[name] = exporter(session, user_id)
    audit.record(session, "gdpr.export", actor_id=user_id, target=f"user:{user_id}", ip=ip)
    session.commit()
    return data


def erase_user(session: Session, user_id: uuid.UUID, password: str, ip: str) -> None:
    """Pseudonymise the account; bookings and payments keep pointing at the (now anonymous) id."""
    user = session.get(User, user_id)
    if user is None or user.status == "erased":
        raise ApiError(404, "not_found", "user not found")
    if not verify_password(user.password_hash, password):
        raise ApiError(401, "invalid_credentials", "password is wrong")
    user.email = f"erased-{user.id}@erased.invalid"
    user.phone_enc = user.phone_index = user.phone_last4 = None
    user.full_name = ""
    user.password_hash = None
    user.is_super_admin = False
    user.status = "erased"
    now = utcnow()
    session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    session.execute(
        update(Membership).where(Membership.user_id == user_id).values(status="revoked", pin_hash=None)
    )
    audit.record(session, "gdpr.erase", actor_id=user_id, target=f"user:{user_id}", ip=ip)
    session.commit()


def purge_expired(
    session: Session,
    now: dt.datetime | None = None,
    *,
    audit_detail_retention: dt.timedelta = AUDIT_DETAIL_RETENTION,
) -> dict[str, int]:
    """Retention job: drop long-expired refresh tokens, OTP codes and expired, unaccepted
    invitations; null the detail of audit rows older than `audit_detail_retention`."""
    now = now or utcnow()
    audit_details = audit.purge_detail(session, now - audit_detail_retention)
    tokens = session.execute(
        delete(RefreshToken).where(RefreshToken.expires_at < now - REFRESH_TOKEN_RETENTION)
    )
    invitations = session.execute(
        delete(StaffInvitation).where(StaffInvitation.expires_at < now, StaffInvitation.accepted_at.is_(None))
    )
    otps = session.execute(delete(OtpCode).where(OtpCode.expires_at < now - OTP_RETENTION))
    session.commit()
    return {
        "refresh_tokens": tokens.rowcount or 0,  # type: ignore[attr-defined]
        "invitations": invitations.rowcount or 0,  # type: ignore[attr-defined]
        "otp_codes": otps.rowcount or 0,  # type: ignore[attr-defined]
        "audit_details": audit_details,
    }
