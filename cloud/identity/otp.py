"""Login by phone one-time code: 6 digits, stored as HMAC-SHA256 under a server key (a leaked
table cannot be brute-forced offline), 5-minute expiry, 5 wrong attempts burn the code. Phones are
found by their blind index (users.phone_index), never stored in clear.

The SMS goes through an `OtpSender`; the default writes to the log (console in the demo). The
notifications outbox plugs in by setting `app.state.otp_sender`.
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
import secrets
import uuid
from typing import Protocol

from sqlalchemy import DateTime, ForeignKey, Integer, Text, select, update
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, Session, mapped_column

from cloud.audit import service as audit
from cloud.config import CloudSettings
from cloud.crypto import PiiCipher
from cloud.db import Base
from cloud.errors import ApiError
from cloud.identity import service as identity
from cloud.identity.models import User
from cloud.identity.tokens import TokenService
from cloud.models_common import created_at, utcnow, uuid_pk

log = logging.getLogger(__name__)

OTP_TTL = dt.timedelta(minutes=5)
MAX_ATTEMPTS = 5
INVALID_CODE = ApiError(401, "invalid_otp", "code is wrong or expired")


class OtpCode(Base):
    __tablename__ = "otp_codes"

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("users.id"))
    phone_index: Mapped[str] = mapped_column(Text)
    code_hmac: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    consumed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[dt.datetime] = created_at()


class OtpSender(Protocol):
    def send_otp(self, phone: str, code: str) -> None: ...


class ConsoleOtpSender:
    """Demo sender: the code goes to the log."""

    def send_otp(self, phone: str, code: str) -> None:
        log.warning("OTP for %s: %s (console sender; configure the SMS outbox in production)", phone, code)


def _code_hmac(pii: PiiCipher, phone_index: str, code: str) -> str:
    return pii.blind_index(f"otp:{phone_index}:{code}")


def _only_user_with_phone(session: Session, phone_index: str) -> User | None:
    users = session.scalars(
        select(User).where(User.phone_index == phone_index, User.status == "active").limit(2)
    ).all()
    return users[0] if len(users) == 1 else None


def request_code(session: Session, sender: OtpSender, pii: PiiCipher, raw_phone: str, ip: str) -> None:
    """Send a code if exactly one active account has this phone; say nothing either way."""
    phone = identity.normalize_phone(raw_phone)
    if phone is None:
        raise ApiError(422, "invalid_phone", "phone number is required")
    phone_index = pii.blind_index(phone)
    user = _only_user_with_phone(session, phone_index)
    if user is None:
        return
    session.execute(
        update(OtpCode)
        .where(OtpCode.phone_index == phone_index, OtpCode.consumed_at.is_(None))
        .values(consumed_at=utcnow())
    )
    code = f"{secrets.randbelow(1_000_000):06d}"
    session.add(
        OtpCode(
            user_id=user.id,
            phone_index=phone_index,
            code_hmac=_code_hmac(pii, phone_index, code),
            expires_at=utcnow() + OTP_TTL,
        )
    )
    audit.record(session, "auth.otp_requested", actor_id=user.id, target=f"user:{user.id}", ip=ip)
    session.commit()
    sender.send_otp(phone, code)


def verify_code(
    session: Session,
    settings: CloudSettings,
    tokens: TokenService,
    pii: PiiCipher,
    raw_phone: str,
    code: str,
    ip: str,
) -> identity.TokenPair:
    phone = identity.normalize_phone(raw_phone)
    if phone is None:
        raise INVALID_CODE
    phone_index = pii.blind_index(phone)
    otp = session.scalars(
        select(OtpCode)
        .where(OtpCode.phone_index == phone_index, OtpCode.consumed_at.is_(None))
        .order_by(OtpCode.created_at.desc())
        .limit(1)
        .with_for_update()
    ).first()
    if otp is None or otp.expires_at <= utcnow() or otp.attempts >= MAX_ATTEMPTS:
        raise INVALID_CODE
    if not hmac.compare_digest(otp.code_hmac, _code_hmac(pii, phone_index, code)):
        otp.attempts += 1
        if otp.attempts >= MAX_ATTEMPTS:
            otp.consumed_at = utcnow()  # burnt
        audit.record(session, "auth.otp_failed", actor_id=otp.user_id, target=f"user:{otp.user_id}", ip=ip)
        session.commit()
        raise INVALID_CODE
    otp.consumed_at = utcnow()
    user = session.get(User, otp.user_id)
    if user is None or user.status != "active":
        session.commit()
        raise INVALID_CODE
    role, tenant_id = identity.resolve_role(session, user)
    pair = identity.issue_tokens(session, settings, tokens, user, role, tenant_id)
    audit.record(
        session,
        "auth.login",
        tenant_id=tenant_id,
        actor_id=user.id,
        target=f"user:{user.id}",
        ip=ip,
        detail={"role": role.value, "method": "otp"},
    )
    session.commit()
    return pair
