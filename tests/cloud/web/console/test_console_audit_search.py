"""`GET /api/v1/admin/audit`: the platform admin's search over every tenant's audit trail."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.orm import Session

from cloud.identity.roles import Role

SEARCH = "/api/v1/admin/audit"


async def _suspend_and_reactivate(client: httpx.AsyncClient, admin: Any, tenant_id: Any) -> None:
    for step in ("suspend", "reactivate"):
        response = await client.post(f"/api/v1/admin/tenants/{tenant_id}/{step}", headers=admin.headers)
        assert response.status_code == 200, response.text


async def test_filters_by_tenant_action_text_and_time(
    cloud_client: httpx.AsyncClient, make_account: Any
) -> None:
    admin = await make_account(Role.SUPER_ADMIN)
    owner_a = await make_account(Role.LIBRARY_OWNER, email="owner-a@example.com")
    owner_b = await make_account(Role.LIBRARY_OWNER, email="owner-b@example.com")
    await _suspend_and_reactivate(cloud_client, admin, owner_a.tenant_id)

    by_tenant = await cloud_client.get(
        SEARCH, params={"tenant_id": str(owner_b.tenant_id)}, headers=admin.headers
    )
    assert by_tenant.status_code == 200, by_tenant.text
    assert by_tenant.json(), "owner B's login is in its tenant's chain"
    assert {row["tenant_id"] for row in by_tenant.json()} == {str(owner_b.tenant_id)}

    prefix = await cloud_client.get(SEARCH, params={"action": "tenant"}, headers=admin.headers)
    assert {"tenant.suspend", "tenant.reactivate"} <= {row["action"] for row in prefix.json()}
    assert all(row["action"].startswith("tenant.") for row in prefix.json())
    exact = await cloud_client.get(SEARCH, params={"action": "tenant.suspend"}, headers=admin.headers)
    assert [row["target"] for row in exact.json()] == [f"tenant:{owner_a.tenant_id}"]
    assert exact.json()[0]["actor_email"] == admin.email

    by_email = await cloud_client.get(SEARCH, params={"q": "OWNER-A@example"}, headers=admin.headers)
    assert by_email.json() and all(row["actor_email"] == "owner-a@example.com" for row in by_email.json())
    wildcard = await cloud_client.get(SEARCH, params={"q": "%"}, headers=admin.headers)
    assert wildcard.status_code == 200 and wildcard.json() == [], "LIKE wildcards in q are literal"

    future = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
    assert (await cloud_client.get(SEARCH, params={"since": future}, headers=admin.headers)).json() == []
    newest = await cloud_client.get(SEARCH, params={"limit": 2}, headers=admin.headers)
    ids = [row["id"] for row in newest.json()]
    assert len(ids) == 2 and ids == sorted(ids, reverse=True)


async def test_each_search_is_itself_audited(
    cloud_client: httpx.AsyncClient, make_account: Any, owner_session: Session
) -> None:
    admin = await make_account(Role.SUPER_ADMIN)
    response = await cloud_client.get(SEARCH, params={"q": "needle", "limit": 5}, headers=admin.headers)
    assert response.status_code == 200
    row = owner_session.execute(
        text("SELECT actor_id, chain, detail FROM audit_log WHERE action = 'audit.search' ORDER BY id DESC")
    ).first()
    assert row is not None
    assert row.actor_id == admin.id and row.chain == "platform"
    assert row.detail == {"q": "needle", "limit": "5"}


async def test_only_super_admins_search(cloud_client: httpx.AsyncClient, make_account: Any) -> None:
    assert (await cloud_client.get(SEARCH)).status_code == 401
    for role in (Role.STUDENT, Role.LIBRARY_STAFF, Role.LIBRARY_OWNER):
        account = await make_account(role)
        response = await cloud_client.get(SEARCH, headers=account.headers)
        assert response.status_code == 403, (role, response.text)
        assert response.json()["error"]["code"] == "forbidden"


async def test_bad_filters_get_typed_errors(cloud_client: httpx.AsyncClient, make_account: Any) -> None:
    admin = await make_account(Role.SUPER_ADMIN)
    for params in (
        {"since": "yesterday"},
        {"since": "2026-11-24T10:00:00"},
        {"tenant_id": "not-a-uuid"},
        {"limit": "0"},
        {"limit": "5000"},
        {"q": "x" * 201},
    ):
        response = await cloud_client.get(SEARCH, params=params, headers=admin.headers)
        assert response.status_code == 422, (params, response.text)
        assert response.json()["error"]["code"] == "validation_error"
