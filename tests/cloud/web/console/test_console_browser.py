"""The owner and platform-admin dashboard in real headless Chromium, screenshots at both sizes."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from playwright.async_api import Page, expect

from cloud.identity.roles import Role
from tests.cloud.booking.conftest import build_library
from tests.cloud.web.console.conftest import OwnerRig, screenshots, seed_library_history, sign_in


async def test_owner_sees_the_library_panels_and_invites_staff(
    owner_rig: OwnerRig, page: Page, artifacts_dir: Path
) -> None:
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.goto(owner_rig.url + "/dashboard")
    await screenshots(page, artifacts_dir, "login")
    await sign_in(page, owner_rig.url, owner_rig.owner)
    await expect(page).to_have_url(re.compile(r"/dashboard/owner$"))
    await expect(page.locator("body")).to_have_attribute("data-loaded", owner_rig.library.id)
    await expect(page.get_by_label("Library")).to_have_value(owner_rig.library.id)

    await expect(page.locator("#panel-occupancy svg rect.cell")).to_have_count(168)
    await expect(page.get_by_role("img", name=re.compile("Average occupancy"))).to_be_visible()
    await expect(page.locator("#panel-summary")).to_contain_text("no-show rate")
    revenue = page.locator("#panel-revenue")
    await expect(revenue.get_by_role("img", name="Net revenue by month")).to_be_visible()
    await expect(revenue.get_by_role("img", name="Net revenue by plan")).to_contain_text("Hourly")
    await expect(page.locator("#panel-energy svg rect.bar")).to_have_count(7)
    await expect(page.locator("#panel-forecast tbody tr").first).to_be_visible()
    await expect(page.locator("#panel-dues").get_by_role("row", name=re.compile("Morning"))).to_contain_text(
        "C1"
    )
    async with page.expect_download() as download_info:
        await page.get_by_role("button", name="Download CSV (by month)").click()
    csv_path = await (await download_info.value).path()
    csv_text = await asyncio.to_thread(Path(csv_path).read_text)
    assert csv_text.startswith("key,label,currency,payments,gross_minor")

    devices = page.locator("#panel-devices")
    await expect(devices.get_by_role("row", name=re.compile(owner_rig.device_name))).to_contain_text("online")
    await expect(devices).to_contain_text("Sunrise Library")

    await page.get_by_label("Bookings on").fill(owner_rig.booking_day)
    bookings = page.locator("#panel-bookings")
    await expect(bookings.get_by_role("row", name=re.compile("A2"))).to_contain_text("10:00\u201312:00")

    await page.get_by_label("Email", exact=True).fill("new.staff@example.com")
    await page.get_by_role("button", name="Send invitation").click()
    await expect(page.locator("#invite-result")).to_contain_text("Invitation for new.staff@example.com")
    await screenshots(page, artifacts_dir, "owner")
    assert errors == []


async def test_admin_sees_tenants_and_fleet_suspends_a_tenant_and_searches_the_audit_log(
    edge_rig: OwnerRig,
    page: Page,
    cloud_app: FastAPI,
    make_account: Any,
    cloud_client: httpx.AsyncClient,
    artifacts_dir: Path,
) -> None:
    seed_library_history(cloud_app, edge_rig.owner.tenant_id, edge_rig.library.id, days=3)
    admin = await make_account(Role.SUPER_ADMIN)
    tenant_id = str(edge_rig.owner.tenant_id)
    tenants = (await cloud_client.get("/api/v1/admin/tenants", headers=admin.headers)).json()
    tenant_name = next(tenant["name"] for tenant in tenants if tenant["id"] == tenant_id)
    await sign_in(page, edge_rig.url, admin)
    await expect(page).to_have_url(re.compile(r"/dashboard/admin$"))
    await expect(page.locator("body")).to_have_attribute("data-loaded", "admin")

    await expect(page.locator("#panel-overview")).to_contain_text("edges online")
    revenue = page.get_by_role("img", name="Net revenue by tenant")
    await expect(revenue).to_contain_text(tenant_name)
    fleet_row = page.locator("#panel-fleet").get_by_role("row", name=re.compile(edge_rig.device_name))
    await expect(fleet_row).to_contain_text("online")
    await expect(fleet_row).to_contain_text(tenant_name)

    await page.get_by_role("button", name=f"Suspend {tenant_name}").click()
    await page.get_by_role("button", name=f"Confirm suspend of {tenant_name}").press("Enter")
    tenant_row = page.locator("#panel-tenants").get_by_role("row", name=re.compile(tenant_name))
    await expect(tenant_row).to_contain_text("suspended")
    await expect(page.get_by_role("button", name=f"Reactivate {tenant_name}")).to_be_visible()

    await page.get_by_label("Tenant", exact=True).select_option(tenant_id)
    await page.get_by_label("Action", exact=True).fill("tenant")
    await page.get_by_role("button", name="Search").click()
    results = page.locator("#panel-audit")
    await expect(results.get_by_role("row", name=re.compile("tenant.suspend"))).to_contain_text(admin.email)
    await expect(results).not_to_contain_text("auth.login")
    await screenshots(page, artifacts_dir, "admin")

    await page.goto(edge_rig.url + "/dashboard/owner")  # not an admin's page: back to their own
    await expect(page).to_have_url(re.compile(r"/dashboard/admin$"))
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_label("Password")).to_be_visible()
    await page.goto(edge_rig.url + "/dashboard/admin")
    await expect(page).to_have_url(re.compile(r"/dashboard$"))


async def test_panels_say_not_available_without_the_endpoint_and_a_dead_token_is_refreshed(
    live_server: str, cloud_client: httpx.AsyncClient, make_account: Any, page: Page
) -> None:
    """As against a cloud without the analytics and billing services: their endpoints answer 404."""
    owner = await make_account(Role.LIBRARY_OWNER)
    await build_library(cloud_client, owner, name="Bare Library")
    missing = {"error": {"code": "not_found", "message": "Not Found", "details": None}}
    for pattern in ("**/api/v1/analytics/**", "**/api/v1/tenant/dues*"):
        await page.route(pattern, lambda route: route.fulfill(status=404, json=missing))
    await sign_in(page, live_server, owner)
    await expect(page.locator("body")).to_have_attribute("data-loaded", re.compile(".+"))
    for panel in ("summary", "occupancy", "revenue", "energy", "dues", "forecast"):
        body = page.locator(f"#panel-{panel} .body")
        await expect(body).to_have_attribute("data-state", "unavailable")
        await expect(body).to_contain_text("Not available")
    await expect(page.locator("#panel-devices")).to_contain_text("No edge devices yet.")
    await expect(page.locator("#panel-staff")).to_contain_text(owner.email)

    # an access token that no longer verifies: one refresh, then the request goes through
    key = "studyspot.console.session"
    read_session = f"JSON.parse(sessionStorage.getItem('{key}'))"
    before = await page.evaluate(read_session)
    await page.evaluate(
        f"sessionStorage.setItem('{key}', JSON.stringify({{...{read_session}, access: 'x'}}))"
    )
    await page.get_by_label("Email", exact=True).fill("late.staff@example.com")
    await page.get_by_role("button", name="Send invitation").click()
    await expect(page.locator("#invite-result")).to_contain_text("Invitation for late.staff@example.com")
    after = await page.evaluate(read_session)
    assert after["access"] not in ("x", before["access"])
    assert after["refresh"] != before["refresh"], "the refresh token rotated"
    assert after["role"] == "library_owner"

    # staff see the library's panels but neither money nor devices, and cannot invite
    staff = await make_account(Role.LIBRARY_STAFF, tenant_id=owner.tenant_id)
    await page.unroute_all()
    await page.get_by_role("button", name="Sign out").click()
    await sign_in(page, live_server, staff)
    await expect(page.locator("body")).to_have_attribute("data-loaded", re.compile(".+"))
    for panel in ("revenue", "devices"):
        await expect(page.locator(f"#panel-{panel} .body")).to_have_attribute("data-state", "forbidden")
    await expect(page.locator("#panel-summary .body")).to_have_attribute("data-state", "ready")
    await expect(page.locator("#invite-form")).to_be_hidden()
