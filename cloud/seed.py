"""Demo data: tenant "Demo Study Library", one library of 40 seats, one account per role.

`seed_demo(settings)` is idempotent (running it again returns the same ids and resets the demo
passwords/PIN to the values below) and returns the `demo.json` fragment:
`tenant_id`, `library_id`, `seats: [{id, label}]`, `accounts: {role: {email, password, pin?}}`,
`pass_keys: {kid: public key}`. `issue_demo_pass(settings, seeded)` signs a QR pass for the demo
student (seat A01, valid now for 12 hours) with the tenant's pass key.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud import crypto
from cloud.config import CloudSettings
from cloud.db import app_url, make_engine, make_session_factory, platform_scope
from cloud.identity import service as identity
from cloud.identity.models import User
from cloud.identity.passwords import hash_password, verify_password
from cloud.identity.roles import Role
from cloud.tenancy import service as tenancy
from cloud.tenancy.models import Library, Seat, Tenant
from cloud.tenancy.passkeys import current_pass_key, pass_public_keys_text
from shared.passes import PassClaims, PassScope, issue_pass, new_pass_id, short_id

DEMO_TENANT_NAME = "Demo Study Library"
DEMO_TENANT_SLUG = "demo-study-library"
DEMO_LIBRARY_NAME = "Demo Study Library - Koramangala"
DEMO_TIMEZONE = "Asia/Kolkata"
DEMO_SEAT_LABELS = tuple(f"A{n:02d}" for n in range(1, 41))
DEMO_STAFF_PIN = "4321"
# Other students whose bookings and waitlist entry fill the demo's pages (the demo student's own
# quota of active bookings stays free for whoever tries the student app).
DEMO_CLASSMATES = (
    ("ravi@demo-library.example.com", "Ravi Kumar"),
    ("meera@demo-library.example.com", "Meera Iyer"),
)
DEMO_CLASSMATE_PASSWORD = "demo-classmate-password"  # noqa: S105 (published demo account)
DEMO_ACCOUNTS: dict[Role, tuple[str, str, str]] = {
    Role.SUPER_ADMIN: ("admin@studyspot.example.com", "demo-admin-password", "Platform Admin"),
    Role.LIBRARY_OWNER: ("owner@demo-library.example.com", "demo-owner-password", "Meera Owner"),
    Role.LIBRARY_STAFF: ("staff@demo-library.example.com", "demo-staff-password", "Ravi Desk"),
    Role.STUDENT: ("student@demo-library.example.com", "demo-student-password", "Asha Student"),
}
ACCOUNT_KEYS = {
    Role.SUPER_ADMIN: "super_admin",
    Role.LIBRARY_OWNER: "owner",
    Role.LIBRARY_STAFF: "staff",
    Role.STUDENT: "student",
}


def seed_demo(settings: CloudSettings) -> dict[str, Any]:
    """Create (or refresh) the demo data; `settings.database_url` must point at a migrated DB."""
    engine = make_engine(app_url(settings), pool_size=1)
    master_key = crypto.load_master_key(settings)
    try:
        with make_session_factory(engine)() as session:
            platform_scope(session)
            result = _seed(session, master_key)
            session.commit()
            return result
    finally:
        engine.dispose()


def _seed(session: Session, master_key: bytes) -> dict[str, Any]:
    users = {role: _ensure_user(session, role) for role in DEMO_ACCOUNTS}
    classmates = [_ensure_classmate(session, email, name) for email, name in DEMO_CLASSMATES]
    tenant = _ensure_tenant(session, users[Role.LIBRARY_OWNER])
    tenancy.add_membership(session, tenant.id, users[Role.LIBRARY_OWNER].id, Role.LIBRARY_OWNER)
    tenancy.add_membership(
        session, tenant.id, users[Role.LIBRARY_STAFF].id, Role.LIBRARY_STAFF, pin=DEMO_STAFF_PIN
    )
    library = _ensure_library(session, tenant)
    seats = _ensure_seats(session, library)
    current_pass_key(session, tenant.id, master_key)
    accounts: dict[str, dict[str, str]] = {}
    for role, (email, password, _) in DEMO_ACCOUNTS.items():
        accounts[ACCOUNT_KEYS[role]] = {"email": email, "password": password, "user_id": str(users[role].id)}
    accounts["staff"]["pin"] = DEMO_STAFF_PIN
    return {
        "tenant_id": str(tenant.id),
        "library_id": str(library.id),
        "library_timezone": library.timezone,
        "seats": [{"id": str(seat.id), "label": seat.label} for seat in seats],
        "accounts": accounts,
        "pass_keys": pass_public_keys_text(session, tenant.id),
        "classmate_ids": [str(user.id) for user in classmates],
    }


def _ensure_classmate(session: Session, email: str, full_name: str) -> User:
    user = identity.find_user_by_email(session, email)
    if user is None:
        user = identity.create_user(session, email, DEMO_CLASSMATE_PASSWORD, full_name=full_name)
    return user


def _ensure_user(session: Session, role: Role) -> User:
    email, password, full_name = DEMO_ACCOUNTS[role]
    user = identity.find_user_by_email(session, email)
    if user is None:
        user = identity.create_user(
            session, email, password, full_name=full_name, is_super_admin=role is Role.SUPER_ADMIN
        )
    elif not verify_password(user.password_hash, password):
        user.password_hash = hash_password(password)
        user.status = "active"
    return user


def _ensure_tenant(session: Session, owner: User) -> Tenant:
    tenant = session.scalars(select(Tenant).where(Tenant.slug == DEMO_TENANT_SLUG)).first()
    if tenant is None:
        tenant = Tenant(name=DEMO_TENANT_NAME, slug=DEMO_TENANT_SLUG, subscription_plan="demo")
        session.add(tenant)
        session.flush()
    tenant.status = "active"
    return tenant


def _ensure_library(session: Session, tenant: Tenant) -> Library:
    library = session.scalars(
        select(Library).where(Library.tenant_id == tenant.id, Library.name == DEMO_LIBRARY_NAME)
    ).first()
    if library is None:
        library = tenancy.create_library(
            session,
            tenant.id,
            name=DEMO_LIBRARY_NAME,
            timezone=DEMO_TIMEZONE,
            address="80 Feet Road, Koramangala 4th Block, Bengaluru 560034",
            latitude=12.9352,
            longitude=77.6245,
            amenities=["wifi", "ac", "power", "locker", "water"],
        )
    return library


def _ensure_seats(session: Session, library: Library) -> list[Seat]:
    existing = {seat.label for seat in session.scalars(select(Seat).where(Seat.library_id == library.id))}
    missing = [label for label in DEMO_SEAT_LABELS if label not in existing]
    if missing:
        tenancy.add_seats(session, library, missing, zone="Main Hall")
    seats = session.scalars(select(Seat).where(Seat.library_id == library.id).order_by(Seat.label)).all()
    return list(seats)


def issue_demo_pass(
    settings: CloudSettings,
    seeded: dict[str, Any],
    *,
    now: dt.datetime | None = None,
    hours: int = 12,
) -> str:
    """A QR pass for the demo student on the first seat, valid from now for `hours`."""
    issued = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    engine = make_engine(app_url(settings), pool_size=1)
    try:
        with make_session_factory(engine)() as session:
            platform_scope(session)
            kid, private_key = current_pass_key(
                session, uuid.UUID(seeded["tenant_id"]), crypto.load_master_key(settings)
            )
            session.commit()
    finally:
        engine.dispose()
    claims = PassClaims(
        pass_id=new_pass_id(),
        library=short_id(seeded["library_id"]),
        scope=PassScope.SEAT,
        target=short_id(seeded["seats"][0]["id"]),
        holder=short_id(seeded["accounts"]["student"]["user_id"]),
        valid_from=issued,
        valid_until=issued + dt.timedelta(hours=hours),
        issued_at=issued,
        key_id=kid,
    )
    return issue_pass(claims, private_key)
