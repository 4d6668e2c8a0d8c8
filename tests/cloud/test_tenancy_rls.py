"""Row-level security under the app role, platform admin tenants, staff invitations."""

from __future__ import annotations

import uuid

import httpx
from fastapi import FastAPI
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from cloud.db import app_url, make_session_factory, platform_scope, tenant_scope
from cloud.identity.roles import Role
from cloud.tenancy import service as tenancy
from cloud.tenancy.models import Library, Membership, Seat


def _two_tenants(session: Session) -> tuple[uuid.UUID, uuid.UUID]:
    platform_scope(session)
    ids = []
    for name in ("Alpha Library", "Beta Library"):
        tenant, _ = tenancy.create_tenant(
            session,
            name=name,
            owner_email=f"owner@{name.split()[0].lower()}.example",
            owner_password="owner password 1",
            actor_id=None,
        )
        library = tenancy.create_library(session, tenant.id, name=name, timezone="Asia/Kolkata")
        tenancy.add_seats(session, library, ["A01", "A02"])
        session.commit()
        ids.append(tenant.id)
    return ids[0], ids[1]


def test_app_role_is_not_owner_and_cannot_bypass_rls(cloud_app: FastAPI) -> None:
    with cloud_app.state.engine.connect() as conn:
        row = conn.execute(
            text("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
        ).one()
        owner = conn.execute(
            text("SELECT tableowner FROM pg_tables WHERE tablename = 'memberships'")
        ).scalar()
        forced = conn.execute(
            text("SELECT relforcerowsecurity FROM pg_class WHERE relname = 'memberships'")
        ).scalar()
    assert tuple(row) == (False, False)
    assert owner != "studyspot_app"
    assert forced is True


def test_query_without_tenant_filter_returns_only_own_tenant(cloud_app: FastAPI) -> None:
    factory = cloud_app.state.session_factory
    with factory() as session:
        alpha, _beta = _two_tenants(session)
    with factory() as session:
        tenant_scope(session, alpha, None)
        # deliberately no WHERE tenant_id = ...: RLS alone must hide Beta's rows
        memberships = session.query(Membership).all()
        raw = session.execute(text("SELECT DISTINCT tenant_id FROM memberships")).scalars().all()
        audit = session.execute(text("SELECT DISTINCT tenant_id FROM audit_log")).scalars().all()
        tenants = session.execute(text("SELECT id FROM tenants")).scalars().all()
    assert memberships and {m.tenant_id for m in memberships} == {alpha}
    assert raw == [alpha] and audit == [alpha] and tenants == [alpha]


def test_scope_does_not_leak_across_transactions_or_pooled_connections(cloud_settings) -> None:
    engine = create_engine(app_url(cloud_settings), pool_size=1, max_overflow=0)
    factory = make_session_factory(engine)
    try:
        with factory() as session:
            alpha, _ = _two_tenants(session)
        with factory() as session:
            tenant_scope(session, alpha, None)
            assert session.execute(text("SELECT count(*) FROM memberships")).scalar() == 1
        # same single pooled connection, no scope: nothing visible
        with factory() as session:
            assert session.execute(text("SELECT count(*) FROM memberships")).scalar() == 0
            assert session.execute(text("SELECT current_setting('app.tenant_id', true)")).scalar() in (
                "",
                None,
            )
    finally:
        engine.dispose()


def test_tenant_cannot_write_into_another_tenant(cloud_app: FastAPI) -> None:
    factory = cloud_app.state.session_factory
    with factory() as session:
        alpha, beta = _two_tenants(session)
    with factory() as session:
        tenant_scope(session, alpha, None)
        beta_library = session.query(Library).filter(Library.tenant_id == beta).one()  # catalogue is public
        session.add(Seat(tenant_id=beta, library_id=beta_library.id, label="X99"))
        try:
            session.flush()
            raise AssertionError("insert into another tenant was allowed")
        except Exception as exc:
            assert "row-level security" in str(exc)
        session.rollback()
        tenant_scope(session, alpha, None)
        updated = session.execute(
            text("UPDATE seats SET label = 'HACK' WHERE tenant_id = :beta"), {"beta": beta}
        ).rowcount
        assert updated == 0


async def test_super_admin_creates_lists_and_suspends_tenants(
    cloud_client: httpx.AsyncClient, make_account
) -> None:
    admin = await make_account(Role.SUPER_ADMIN)
    created = await cloud_client.post(
        "/api/v1/admin/tenants",
        json={
            "name": "Gyan Study Hall",
            "owner_email": "gyan@example.com",
            "owner_password": "owner password",
        },
        headers=admin.headers,
    )
    assert created.status_code == 201, created.text
    tenant_id = created.json()["tenant"]["id"]
    owner_login = await cloud_client.post(
        "/api/v1/auth/login", json={"email": "gyan@example.com", "password": "owner password"}
    )
    assert owner_login.json()["role"] == "library_owner"
    assert owner_login.json()["tenant_id"] == tenant_id

    listed = await cloud_client.get("/api/v1/admin/tenants", headers=admin.headers)
    assert [t["id"] for t in listed.json()] == [tenant_id]

    suspended = await cloud_client.post(f"/api/v1/admin/tenants/{tenant_id}/suspend", headers=admin.headers)
    assert suspended.json()["status"] == "suspended"
    # owners of a suspended tenant log in as plain students
    again = await cloud_client.post(
        "/api/v1/auth/login", json={"email": "gyan@example.com", "password": "owner password"}
    )
    assert again.json()["role"] == "student"

    missing = await cloud_client.post(f"/api/v1/admin/tenants/{uuid.uuid4()}/suspend", headers=admin.headers)
    assert missing.status_code == 404


async def test_owner_invites_staff_who_joins_the_tenant(
    cloud_client: httpx.AsyncClient, make_account
) -> None:
    owner = await make_account(Role.LIBRARY_OWNER)
    invite = await cloud_client.post(
        "/api/v1/tenant/invitations", json={"email": "desk@example.com"}, headers=owner.headers
    )
    assert invite.status_code == 201, invite.text
    token = invite.json()["token"]
    accepted = await cloud_client.post(
        "/api/v1/auth/accept-invite", json={"token": token, "password": "desk password", "full_name": "Desk"}
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["role"] == "library_staff"
    reused = await cloud_client.post(
        "/api/v1/auth/accept-invite", json={"token": token, "password": "desk password"}
    )
    assert reused.status_code == 400

    staff_login = await cloud_client.post(
        "/api/v1/auth/login", json={"email": "desk@example.com", "password": "desk password"}
    )
    assert staff_login.json()["role"] == "library_staff"
    assert staff_login.json()["tenant_id"] == str(owner.tenant_id)
    members = await cloud_client.get("/api/v1/tenant/members", headers=owner.headers)
    assert sorted(m["role"] for m in members.json()) == ["library_owner", "library_staff"]


async def test_members_of_another_tenant_are_invisible(cloud_client: httpx.AsyncClient, make_account) -> None:
    first = await make_account(Role.LIBRARY_OWNER)
    second = await make_account(Role.LIBRARY_OWNER)
    members = (await cloud_client.get("/api/v1/tenant/members", headers=first.headers)).json()
    assert [m["email"] for m in members] == [first.email]
    assert second.email not in str(members)


async def test_owner_changes_roles_and_pin_and_keeps_an_owner(
    cloud_client: httpx.AsyncClient, make_account, owner_session: Session
) -> None:
    owner = await make_account(Role.LIBRARY_OWNER)
    staff = await make_account(Role.LIBRARY_STAFF, tenant_id=owner.tenant_id)
    promoted = await cloud_client.patch(
        f"/api/v1/tenant/members/{staff.id}",
        json={"role": "library_owner", "pin": "2468"},
        headers=owner.headers,
    )
    assert promoted.status_code == 200, promoted.text
    assert promoted.json()["role"] == "library_owner"
    pin_hash = owner_session.execute(
        text("SELECT pin_hash FROM memberships WHERE user_id = :u"), {"u": staff.id}
    ).scalar_one()
    assert pin_hash.startswith("$argon2id$")
    assert (
        "membership.role_change"
        in owner_session.execute(text("SELECT action FROM audit_log")).scalars().all()
    )

    await cloud_client.patch(
        f"/api/v1/tenant/members/{staff.id}", json={"status": "revoked"}, headers=owner.headers
    )
    last = await cloud_client.patch(
        f"/api/v1/tenant/members/{owner.id}", json={"role": "library_staff"}, headers=owner.headers
    )
    assert last.status_code == 409 and last.json()["error"]["code"] == "last_owner"
    bad_pin = await cloud_client.patch(
        f"/api/v1/tenant/members/{owner.id}", json={"pin": "12"}, headers=owner.headers
    )
    assert bad_pin.status_code == 422
    stranger = await make_account(Role.LIBRARY_OWNER)
    hidden = await cloud_client.patch(
        f"/api/v1/tenant/members/{owner.id}", json={"status": "revoked"}, headers=stranger.headers
    )
    assert hidden.status_code == 404


async def test_login_prefers_owner_role_and_accepts_a_tenant_choice(
    cloud_client: httpx.AsyncClient, cloud_app: FastAPI, make_account
) -> None:
    owner_a = await make_account(Role.LIBRARY_OWNER)
    owner_b = await make_account(Role.LIBRARY_OWNER)
    with cloud_app.state.session_factory() as session:
        platform_scope(session)
        tenancy.add_membership(session, owner_a.tenant_id, owner_b.id, Role.LIBRARY_STAFF)
        session.commit()
    credentials = {"email": owner_b.email, "password": owner_b.password}
    default = (await cloud_client.post("/api/v1/auth/login", json=credentials)).json()
    assert (default["role"], default["tenant_id"]) == ("library_owner", str(owner_b.tenant_id))
    chosen = (
        await cloud_client.post(
            "/api/v1/auth/login", json={**credentials, "tenant_id": str(owner_a.tenant_id)}
        )
    ).json()
    assert (chosen["role"], chosen["tenant_id"]) == ("library_staff", str(owner_a.tenant_id))
    foreign = await cloud_client.post(
        "/api/v1/auth/login", json={**credentials, "tenant_id": str(uuid.uuid4())}
    )
    assert foreign.status_code == 403
