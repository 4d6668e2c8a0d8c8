"""The dashboard's page shells and its one API route, over plain HTTP."""

from __future__ import annotations

import re
from typing import Any

import httpx

from cloud.identity.roles import Role
from tests.cloud.booking.conftest import build_library

LIBRARIES = "/api/v1/dashboard/libraries"


async def test_pages_are_public_shells_under_the_strict_csp(cloud_client: httpx.AsyncClient) -> None:
    for path, script in (
        ("/dashboard", "login.js"),
        ("/dashboard/owner", "owner.js"),
        ("/dashboard/admin", "admin.js"),
    ):
        response = await cloud_client.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-security-policy"] == "default-src 'self'"
        assert response.headers["cache-control"] == "no-store"
        html = response.text
        assert f'<script type="module" src="/dashboard/static/{script}"></script>' in html
        assert not re.search(r"<script(?![^>]*\bsrc=)", html), "no inline script"
        assert " style=" not in html and "<style" not in html, "no inline style"
        assert "http://" not in html and "https://" not in html, "nothing from another origin"
    for asset in ("console.css", "api.js", "charts.js", "dom.js", "owner.js", "admin.js", "login.js"):
        response = await cloud_client.get(f"/dashboard/static/{asset}")
        assert response.status_code == 200, asset
    assert (await cloud_client.get("/dashboard/static/nope.js")).status_code == 404


async def test_library_list_is_the_callers_tenant_only(
    cloud_client: httpx.AsyncClient, make_account: Any
) -> None:
    owner = await make_account(Role.LIBRARY_OWNER)
    other = await make_account(Role.LIBRARY_OWNER)
    staff = await make_account(Role.LIBRARY_STAFF, tenant_id=owner.tenant_id)
    await build_library(cloud_client, owner, name="Zeta Hall")
    await build_library(cloud_client, owner, name="Alpha Hall")
    await build_library(cloud_client, other, name="Elsewhere")
    for account in (owner, staff):
        response = await cloud_client.get(LIBRARIES, headers=account.headers)
        assert response.status_code == 200, response.text
        assert [library["name"] for library in response.json()] == ["Alpha Hall", "Zeta Hall"]
        assert {library["tenant_id"] for library in response.json()} == {str(owner.tenant_id)}
    for role in (Role.STUDENT, Role.SUPER_ADMIN):
        response = await cloud_client.get(LIBRARIES, headers=(await make_account(role)).headers)
        assert response.status_code == 403, response.text
    assert (await cloud_client.get(LIBRARIES)).status_code == 401
