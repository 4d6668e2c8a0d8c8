"""Registration, login, refresh-token rotation with reuse detection, logout, profile."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import uuid
from dataclasses import dataclass

import phonenumbers
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloud.audit import service as audit
from cloud.config import CloudSettings
from cloud.crypto import PiiCipher
from cloud.errors import ApiError
from cloud.identity.models import RefreshToken, User
from cloud.identity.passwords import hash_password, needs_rehash, verify_password
from cloud.identity.roles import Role, permissions_of
from cloud.identity.tokens import TokenService
from cloud.models_common import utcnow
from cloud.tenancy.models import Membership, Tenant

INVALID_CREDENTIALS = ApiError(401, "invalid_credentials", "email or password is wrong")


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    role: Role
    tenant_id: uuid.UUID | None


def normalize_email(email: str) -> str:
    return email.strip().lower()


def normalize_phone(phone: str | None) -> str | None:
    if phone is None or not phone.strip():
        return None
    try:
        parsed = phonenumbers.parse(phone, "IN")
    except phonenumbers.NumberParseException as exc:
        raise ApiError(422, "invalid_phone", "phone number is not valid") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise ApiError(422, "invalid_phone", "phone number is not valid")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


PHONE_CONTEXT = b"users.phone:"


def set_phone(user: User, raw_phone: str | None, pii: PiiCipher | None) -> None:
    """Store the phone encrypted, with a blind index for lookups and the last 4 digits for display."""
    phone = normalize_phone(raw_phone)
    if phone is None:
        user.phone_enc = user.phone_index = user.phone_last4 = None
        return
    if pii is None:
        raise ValueError("a PiiCipher is needed to store a phone number")
    user.phone_enc = pii.encrypt(phone, PHONE_CONTEXT + user.id.bytes)
    user.phone_index = pii.blind_index(phone)
    user.phone_last4 = phone[-4:]


def read_phone(user: User, pii: PiiCipher) -> str | None:
    if user.phone_enc is None:
        return None
    return pii.decrypt(user.phone_enc, PHONE_CONTEXT + user.id.bytes)


def find_user_by_email(session: Session, email: str) -> User | None:
    return session.scalars(select(User).where(User.email == normalize_email(email))).first()


def create_user(
    session: Session,
    email: str,
    password: str | None,
    *,
    full_name: str = "",
    phone: str | None = None,
    is_super_admin: bool = False,
    pii: PiiCipher | None = None,
) -> User:
    """Insert a user (caller holds a platform scope); 409 when the email is taken."""
    user = User(
        id=uuid.uuid4(),
        email=normalize_email(email),
        password_hash=hash_password(password) if password else None,
        full_name=full_name.strip(),
        is_super_admin=is_super_admin,
    )
    set_phone(user, phone, pii)
    try:
        with session.begin_nested():
            session.add(user)
            session.flush()
    except IntegrityError as exc:
        raise ApiError(409, "email_taken", "an account with this email already exists") from exc
    return user


def register(
    session: Session, pii: PiiCipher, email: str, password: str, full_name: str, phone: str | None, ip: str
) -> User:
    user = create_user(session, email, password, full_name=full_name, phone=phone, pii=pii)
    audit.record(session, "user.register", actor_id=user.id, target=f"user:{user.id}", ip=ip)
    session.commit()
    return user


def resolve_role(
    session: Session, user: User, tenant_id: uuid.UUID | None = None
) -> tuple[Role, uuid.UUID | None]:
    """The role a login acts in: super admin, else a membership of an active tenant, else student."""
    if user.is_super_admin:
        return Role.SUPER_ADMIN, None
    query = (
        select(Membership)
        .join(Tenant, Tenant.id == Membership.tenant_id)
        .where(Membership.user_id == user.id, Membership.status == "active", Tenant.status == "active")
        .order_by(Membership.role, Membership.created_at)  # library_owner sorts before library_staff
    )
    if tenant_id is not None:
        query = query.where(Membership.tenant_id == tenant_id)
    membership = session.scalars(query).first()
    if membership is None:
        if tenant_id is not None:
            raise ApiError(403, "not_a_member", "you are not a member of that tenant")
        return Role.STUDENT, None
    return Role(membership.role), membership.tenant_id


def _hash_refresh(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_tokens(
    session: Session,
    settings: CloudSettings,
    tokens: TokenService,
    user: User,
    role: Role,
    tenant_id: uuid.UUID | None,
    family_id: uuid.UUID | None = None,
) -> TokenPair:
    refresh = secrets.token_urlsafe(32)
    session.add(
        RefreshToken(
            user_id=user.id,
            tenant_id=tenant_id,
            family_id=family_id or uuid.uuid4(),
            token_hash=_hash_refresh(refresh),
            expires_at=utcnow() + dt.timedelta(seconds=settings.jwt_refresh_ttl_seconds),
        )
    )
    access = tokens.issue(user.id, tenant_id, role, permissions_of(role))
    return TokenPair(access, refresh, settings.jwt_access_ttl_seconds, role, tenant_id)


def login(
    session: Session,
    settings: CloudSettings,
    tokens: TokenService,
    email: str,
    password: str,
    tenant_id: uuid.UUID | None,
    ip: str,
) -> TokenPair:
    user = find_user_by_email(session, email)
    if user is None or not verify_password(user.password_hash, password) or user.status != "active":
        audit.record(
            session,
            "auth.login_failed",
            actor_id=user.id if user else None,
            target=f"email:{normalize_email(email)}",
            ip=ip,
        )
        session.commit()
        raise INVALID_CREDENTIALS
    if user.password_hash is not None and needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)  # upgraded to the current parameters
    role, role_tenant = resolve_role(session, user, tenant_id)
    pair = issue_tokens(session, settings, tokens, user, role, role_tenant)
    audit.record(
        session,
        "auth.login",
        tenant_id=role_tenant,
        actor_id=user.id,
        target=f"user:{user.id}",
        ip=ip,
        detail={"role": role.value},
    )
    session.commit()
    return pair


def refresh(
    session: Session, settings: CloudSettings, tokens: TokenService, refresh_token: str, ip: str
) -> TokenPair:
    """Rotate: the presented token is spent and a new one of the same family issued.

    Presenting an already-spent token means it leaked: the whole family is revoked.
    """
    row = session.scalars(
        select(RefreshToken).where(RefreshToken.token_hash == _hash_refresh(refresh_token)).with_for_update()
    ).first()
    invalid = ApiError(401, "invalid_refresh_token", "refresh token is not valid")
    if row is None or row.revoked_at is not None or row.expires_at <= utcnow():
        raise invalid
    if row.used_at is not None:
        revoke_family(session, row.family_id)
        audit.record(
            session,
            "auth.refresh_reuse",
            tenant_id=row.tenant_id,
            actor_id=row.user_id,
            target=f"family:{row.family_id}",
            ip=ip,
        )
        session.commit()
        raise ApiError(401, "refresh_token_reused", "refresh token was already used; session revoked")
    row.used_at = utcnow()
    user = session.get(User, row.user_id)
    if user is None or user.status != "active":
        session.commit()
        raise invalid
    try:
        role, tenant_id = resolve_role(session, user, row.tenant_id)
    except ApiError:
        role, tenant_id = Role.STUDENT, None  # membership ended: continue as a student
    pair = issue_tokens(session, settings, tokens, user, role, tenant_id, family_id=row.family_id)
    session.commit()
    return pair


def revoke_family(session: Session, family_id: uuid.UUID) -> None:
    session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


def logout(session: Session, refresh_token: str, ip: str) -> None:
    """Revoke the token's family; unknown tokens are ignored (logout is idempotent)."""
    row = session.scalars(
        select(RefreshToken).where(RefreshToken.token_hash == _hash_refresh(refresh_token))
    ).first()
    if row is not None:
        revoke_family(session, row.family_id)
        audit.record(
            session,
            "auth.logout",
            tenant_id=row.tenant_id,
            actor_id=row.user_id,
            target=f"user:{row.user_id}",
            ip=ip,
        )
    session.commit()


def get_user(session: Session, user_id: uuid.UUID) -> User:
    user = session.get(User, user_id)
    if user is None or user.status == "erased":
        raise ApiError(404, "not_found", "user not found")
    return user


def update_profile(
    session: Session, pii: PiiCipher, user_id: uuid.UUID, full_name: str | None, phone: str | None
) -> User:
    user = get_user(session, user_id)
    if full_name is not None:
        user.full_name = full_name.strip()
    if phone is not None:
        set_phone(user, phone, pii)
    session.commit()
    return user
