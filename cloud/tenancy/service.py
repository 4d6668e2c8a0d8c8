"""Tenants (platform admin), memberships, staff invitations, libraries and seats."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
import uuid
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloud.audit import service as audit
from cloud.errors import ApiError
from cloud.identity import service as identity
from cloud.identity.models import User
from cloud.identity.passwords import hash_password, verify_password
from cloud.identity.roles import TENANT_ROLES, Role
from cloud.models_common import utcnow
from cloud.tenancy.models import Library, Membership, Seat, StaffInvitation, Tenant

INVITATION_TTL = dt.timedelta(days=7)
PIN_PATTERN = re.compile(r"\d{4,6}")


@dataclass(frozen=True)
class Member:
    user_id: uuid.UUID
    tenant_id: uuid.UUID
    email: str
    full_name: str
    role: str
    status: str


def slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40] or "tenant"
    return f"{slug}-{secrets.token_hex(3)}"


def create_tenant(
    session: Session,
    *,
    name: str,
    owner_email: str,
    owner_password: str | None,
    owner_full_name: str = "",
    subscription_plan: str = "basic",
    actor_id: uuid.UUID | None,
    ip: str = "",
) -> tuple[Tenant, User]:
    """Create a tenant and make `owner_email` its owner (creating that account if needed).

    The caller holds a platform scope (super-admin route or seeding).
    """
    owner = identity.find_user_by_email(session, owner_email)
    if owner is None:
        if not owner_password:
            raise ApiError(422, "owner_password_required", "a new owner account needs a password")
        owner = identity.create_user(session, owner_email, owner_password, full_name=owner_full_name)
    tenant = Tenant(name=name.strip(), slug=slugify(name), subscription_plan=subscription_plan)
    session.add(tenant)
    session.flush()
    add_membership(session, tenant.id, owner.id, Role.LIBRARY_OWNER)
    audit.record(
        session,
        "tenant.create",
        tenant_id=tenant.id,
        actor_id=actor_id,
        target=f"tenant:{tenant.id}",
        ip=ip,
        detail={"owner": str(owner.id), "via": "platform_admin"},
    )
    session.commit()
    return tenant, owner


def add_membership(
    session: Session, tenant_id: uuid.UUID, user_id: uuid.UUID, role: Role, pin: str | None = None
) -> Membership:
    if role not in TENANT_ROLES:
        raise ApiError(422, "invalid_role", f"{role.value} is not a tenant role")
    membership = session.scalars(
        select(Membership).where(Membership.tenant_id == tenant_id, Membership.user_id == user_id)
    ).first()
    if membership is None:
        membership = Membership(tenant_id=tenant_id, user_id=user_id, role=role.value, status="active")
        session.add(membership)
    else:
        membership.role = role.value
        membership.status = "active"
    if pin is not None:
        membership.pin_hash = hash_password(validate_pin(pin))
    session.flush()
    return membership


def validate_pin(pin: str) -> str:
    if not PIN_PATTERN.fullmatch(pin):
        raise ApiError(422, "invalid_pin", "a PIN is 4 to 6 digits")
    return pin


def list_tenants(session: Session) -> Sequence[Tenant]:
    return session.scalars(select(Tenant).order_by(Tenant.created_at)).all()


def set_tenant_status(
    session: Session, tenant_id: uuid.UUID, status: str, *, actor_id: uuid.UUID, ip: str
) -> Tenant:
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        raise ApiError(404, "not_found", "tenant not found")
    previous = tenant.status
    tenant.status = status
    audit.record(
        session,
        f"tenant.{'suspend' if status == 'suspended' else 'reactivate'}",
        tenant_id=tenant.id,
        actor_id=actor_id,
        target=f"tenant:{tenant.id}",
        ip=ip,
        detail={"from": previous, "to": status},
    )
    session.commit()
    return tenant


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def invite_staff(
    session: Session, tenant_id: uuid.UUID, email: str, role: Role, *, invited_by: uuid.UUID, ip: str
) -> tuple[StaffInvitation, str]:
    """Create an invitation; returns it with the one-time token (shown once, stored hashed)."""
    if role not in TENANT_ROLES:
        raise ApiError(422, "invalid_role", "staff can be invited as library_staff or library_owner")
    token = secrets.token_urlsafe(24)
    invitation = StaffInvitation(
        tenant_id=tenant_id,
        email=identity.normalize_email(email),
        role=role.value,
        token_hash=_hash_token(token),
        invited_by=invited_by,
        expires_at=utcnow() + INVITATION_TTL,
    )
    session.add(invitation)
    session.flush()
    audit.record(
        session,
        "staff.invite",
        tenant_id=tenant_id,
        actor_id=invited_by,
        target=f"email:{invitation.email}",
        ip=ip,
        detail={"role": role.value},
    )
    session.commit()
    return invitation, token


def accept_invitation(session: Session, token: str, password: str, full_name: str, ip: str) -> Membership:
    """Join the inviting tenant (platform scope: the invitee has no tenant yet)."""
    invitation = session.scalars(
        select(StaffInvitation).where(StaffInvitation.token_hash == _hash_token(token)).with_for_update()
    ).first()
    if invitation is None or invitation.accepted_at is not None or invitation.expires_at <= utcnow():
        raise ApiError(400, "invalid_invitation", "invitation is not valid or has expired")
    user = identity.find_user_by_email(session, invitation.email)
    if user is None:
        user = identity.create_user(session, invitation.email, password, full_name=full_name)
    elif not verify_password(user.password_hash, password):
        raise identity.INVALID_CREDENTIALS
    membership = add_membership(session, invitation.tenant_id, user.id, Role(invitation.role))
    invitation.accepted_at = utcnow()
    audit.record(
        session,
        "membership.role_change",
        tenant_id=invitation.tenant_id,
        actor_id=user.id,
        target=f"user:{user.id}",
        ip=ip,
        detail={"role": invitation.role, "via": "invitation"},
    )
    session.commit()
    return membership


def list_members(session: Session) -> list[Member]:
    """Members of the session's tenant (row-level security picks the tenant)."""
    rows = session.execute(
        select(Membership, User).join(User, User.id == Membership.user_id).order_by(Membership.created_at)
    ).all()
    return [Member(m.user_id, m.tenant_id, u.email, u.full_name, m.role, m.status) for m, u in rows]


def validate_timezone(name: str) -> str:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ApiError(422, "invalid_timezone", f"unknown time zone {name!r}") from exc
    return name


def create_library(
    session: Session,
    tenant_id: uuid.UUID,
    *,
    name: str,
    timezone: str,
    address: str = "",
    latitude: float | None = None,
    longitude: float | None = None,
    amenities: list[str] | None = None,
) -> Library:
    library = Library(
        tenant_id=tenant_id,
        name=name,
        timezone=validate_timezone(timezone),
        address=address,
        latitude=latitude,
        longitude=longitude,
        amenities=amenities or [],
        capacity=0,
    )
    session.add(library)
    session.flush()
    return library


def add_seats(session: Session, library: Library, labels: Sequence[str], zone: str = "") -> list[Seat]:
    seats = [
        Seat(tenant_id=library.tenant_id, library_id=library.id, label=label, zone=zone) for label in labels
    ]
    session.add_all(seats)
    library.capacity += len(seats)
    try:
        session.flush()
    except IntegrityError as exc:
        raise ApiError(409, "seat_exists", "a seat with that label already exists") from exc
    return seats


def update_member(
    session: Session,
    tenant_id: uuid.UUID,
    user_id: uuid.UUID,
    *,
    role: Role | None,
    status: str | None,
    pin: str | None,
    actor_id: uuid.UUID,
    ip: str,
) -> Member:
    """Change a member's role, status or desk PIN; the tenant always keeps an active owner."""
    membership = session.scalars(
        select(Membership)
        .where(Membership.tenant_id == tenant_id, Membership.user_id == user_id)
        .with_for_update()
    ).first()
    if membership is None:
        raise ApiError(404, "not_found", "member not found")
    if role is not None and role not in TENANT_ROLES:
        raise ApiError(422, "invalid_role", "members are library_owner or library_staff")
    before = {"role": membership.role, "status": membership.status}
    if role is not None:
        membership.role = role.value
    if status is not None:
        membership.status = status
    if pin is not None:
        membership.pin_hash = hash_password(validate_pin(pin))
    session.flush()
    _ensure_an_owner_remains(session, tenant_id)
    after = {"role": membership.role, "status": membership.status}
    if before != after:
        audit.record(
            session,
            "membership.role_change",
            tenant_id=tenant_id,
            actor_id=actor_id,
            target=f"user:{user_id}",
            ip=ip,
            detail={"from": before, "to": after},
        )
    session.commit()
    user = session.get(User, user_id)
    assert user is not None
    return Member(user_id, tenant_id, user.email, user.full_name, membership.role, membership.status)


def _ensure_an_owner_remains(session: Session, tenant_id: uuid.UUID) -> None:
    owners = session.scalars(
        select(Membership.id).where(
            Membership.tenant_id == tenant_id,
            Membership.role == Role.LIBRARY_OWNER.value,
            Membership.status == "active",
        )
    ).all()
    if not owners:
        session.rollback()
        raise ApiError(409, "last_owner", "the tenant must keep at least one active owner")
