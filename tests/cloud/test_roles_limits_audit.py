"""Route x role matrix, rate limits (real Redis and in-memory), audit hash chain."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.orm import Session

from cloud.app import close_app, create_app
from cloud.audit.service import verify_chain
from cloud.config import CloudSettings
from cloud.identity.roles import Role

ANON = "anonymous"
# (method, path, json body) -> statuses allowed per role. 2xx/4xx-other means "got past authz".
ROUTES: list[tuple[str, str, dict | None]] = [
    ("GET", "/api/v1/users/me", None),
    ("PATCH", "/api/v1/users/me", {"full_name": "X"}),
    ("GET", "/api/v1/admin/tenants", None),
    (
        "POST",
        "/api/v1/admin/tenants",
        {"name": "T", "owner_email": "o@example.com", "owner_password": "p" * 10},
    ),
    ("POST", "/api/v1/admin/tenants/{tenant}/suspend", None),
    ("POST", "/api/v1/tenant/invitations", {"email": "staff@example.com"}),
    ("GET", "/api/v1/tenant/members", None),
    ("GET", "/api/v1/tenant/kyc", None),
    ("GET", "/api/v1/users/me/kyc", None),
    ("GET", "/api/v1/users/me/export", None),
    ("GET", "/api/v1/users/me/id-card.png", None),
    ("GET", "/api/v1/tenant/audit", None),
    ("GET", "/api/v1/admin/audit/verify", None),
]
ALLOWED: dict[str, set[str]] = {
    "/api/v1/users/me": {Role.STUDENT, Role.LIBRARY_STAFF, Role.LIBRARY_OWNER, Role.SUPER_ADMIN},
    "/api/v1/admin/tenants": {Role.SUPER_ADMIN},
    "/api/v1/admin/tenants/{tenant}/suspend": {Role.SUPER_ADMIN},
    "/api/v1/tenant/invitations": {Role.LIBRARY_OWNER},
    "/api/v1/tenant/members": {Role.LIBRARY_STAFF, Role.LIBRARY_OWNER},
    "/api/v1/tenant/kyc": {Role.LIBRARY_STAFF, Role.LIBRARY_OWNER},
    "/api/v1/users/me/kyc": set(Role),
    "/api/v1/users/me/export": set(Role),
    "/api/v1/users/me/id-card.png": set(Role),
    "/api/v1/tenant/audit": {Role.LIBRARY_OWNER},
    "/api/v1/admin/audit/verify": {Role.SUPER_ADMIN},
}


async def test_role_matrix(cloud_client: httpx.AsyncClient, make_account) -> None:
    accounts = {role: await make_account(role) for role in Role}
    tenant = accounts[Role.LIBRARY_OWNER].tenant_id
    failures = []
    for method, path, body in ROUTES:
        for role in [ANON, *Role]:
            headers = {} if role == ANON else accounts[role].headers
            response = await cloud_client.request(
                method, path.format(tenant=tenant), json=body, headers=headers
            )
            allowed = role in ALLOWED[path]
            if role == ANON:
                expected_ok = response.status_code == 401
            elif allowed:
                expected_ok = response.status_code < 400 or response.status_code == 409
            else:
                expected_ok = response.status_code == 403
            if not expected_ok:
                failures.append((method, path, str(role), response.status_code, response.text[:120]))
            if response.status_code >= 400:
                assert set(response.json()) == {"error"}
    assert not failures, failures


async def _client_for(settings: CloudSettings):
    app = create_app(settings)
    return app, httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


@pytest.mark.parametrize("storage", ["redis", "memory"])
async def test_auth_rate_limit_is_429_with_retry_after(cloud_settings: CloudSettings, storage: str) -> None:
    settings = cloud_settings.model_copy(
        update={
            "rate_limit_auth": "5/minute",
            "redis_url": cloud_settings.redis_url if storage == "redis" else None,
        }
    )
    app, client = await _client_for(settings)
    try:
        statuses = []
        for _ in range(7):
            response = await client.post(
                "/api/v1/auth/login", json={"email": "a@example.com", "password": "x"}
            )
            statuses.append(response.status_code)
        assert statuses[:5] == [401] * 5
        assert statuses[5:] == [429, 429]
        assert int(response.headers["retry-after"]) >= 1
        assert response.json()["error"]["code"] == "rate_limited"
        # other categories have their own budget
        assert (await client.get("/api/v1/users/me")).status_code == 401
    finally:
        await client.aclose()
        await close_app(app)


async def test_general_limit_counts_per_user(cloud_settings: CloudSettings) -> None:
    settings = cloud_settings.model_copy(update={"rate_limit_general": "3/minute"})
    app, client = await _client_for(settings)
    try:
        for email in ("one@example.com", "two@example.com"):
            await client.post("/api/v1/auth/register", json={"email": email, "password": "password 123"})
        tokens = {}
        for email in ("one@example.com", "two@example.com"):
            login = await client.post("/api/v1/auth/login", json={"email": email, "password": "password 123"})
            tokens[email] = {"Authorization": f"Bearer {login.json()['access_token']}"}
        codes = [
            (await client.get("/api/v1/users/me", headers=tokens["one@example.com"])).status_code
            for _ in range(4)
        ]
        assert codes == [200, 200, 200, 429]
    finally:
        await client.aclose()
        await close_app(app)


async def test_audit_chain_detects_edit_and_delete(
    cloud_client: httpx.AsyncClient, make_account, owner_session: Session
) -> None:
    owner = await make_account(Role.LIBRARY_OWNER)
    for i in range(3):
        await cloud_client.post(
            "/api/v1/tenant/invitations", json={"email": f"s{i}@example.com"}, headers=owner.headers
        )
    await cloud_client.post("/api/v1/auth/login", json={"email": owner.email, "password": "wrong"})
    assert verify_chain(owner_session).ok
    trail = (await cloud_client.get("/api/v1/tenant/audit", headers=owner.headers)).json()
    assert {entry["action"] for entry in trail} >= {"tenant.create", "staff.invite"}
    actions = owner_session.execute(text("SELECT action FROM audit_log ORDER BY id")).scalars().all()
    assert {"tenant.create", "auth.login", "staff.invite", "auth.login_failed"} <= set(actions)

    invite_ids = (
        owner_session.execute(text("SELECT id FROM audit_log WHERE action = 'staff.invite' ORDER BY id"))
        .scalars()
        .all()
    )
    owner_session.execute(
        text("UPDATE audit_log SET target = 'email:someone-else' WHERE id = :id"), {"id": invite_ids[0]}
    )
    edited = verify_chain(owner_session)
    assert [(p.row_id, "edited" in p.problem) for p in edited.problems] == [(invite_ids[0], True)]
    owner_session.rollback()

    owner_session.execute(text("DELETE FROM audit_log WHERE id = :id"), {"id": invite_ids[1]})
    deleted = verify_chain(owner_session)
    assert [p.row_id for p in deleted.problems] == [invite_ids[2]]
    owner_session.rollback()


async def test_app_role_cannot_write_audit_rows_directly(cloud_app: FastAPI) -> None:
    with cloud_app.state.engine.connect() as conn:
        for statement in (
            "DELETE FROM audit_log",
            "UPDATE audit_log SET action = 'x'",
            "INSERT INTO audit_log (chain, action, occurred_at, prev_hash, hash) "
            "VALUES ('platform', 'x', now(), '', '')",
        ):
            with pytest.raises(Exception, match="permission denied"):
                conn.execute(text(statement))
            conn.rollback()


async def test_super_admin_verifies_the_chain_over_http(
    cloud_client: httpx.AsyncClient, make_account, owner_session: Session
) -> None:
    admin = await make_account(Role.SUPER_ADMIN)
    await make_account(Role.LIBRARY_OWNER)
    first = (await cloud_client.get("/api/v1/admin/audit/verify", headers=admin.headers)).json()
    assert first["ok"] is True and first["rows_checked"] >= 3
    owner_session.execute(
        text("UPDATE audit_log SET ip = '6.6.6.6' WHERE id = (SELECT min(id) FROM audit_log)")
    )
    owner_session.commit()
    tampered = (await cloud_client.get("/api/v1/admin/audit/verify", headers=admin.headers)).json()
    assert tampered["ok"] is False and tampered["problems"]


async def test_untrusted_host_is_refused(cloud_settings: CloudSettings) -> None:
    settings = cloud_settings.model_copy(update={"trusted_hosts": ["api.studyspot.example"]})
    app, client = await _client_for(settings)
    try:
        refused = await client.get("/health")
        assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_host"
        assert (await client.get("/health", headers={"host": "*.evil.example"})).status_code == 400
        trusted = await client.get("/health", headers={"host": "api.studyspot.example"})
        assert trusted.status_code == 200
    finally:
        await client.aclose()
        await close_app(app)
