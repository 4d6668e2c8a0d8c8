"""Every route of the app x every role, plus a cross-tenant pass (issue 3 §4, issue 11 §3).

Each route has an access class. Called with random UUIDs in the path and a minimal JSON body:
anonymous gets 401 on protected routes, a role outside the class gets 403 (no route hides a role
denial behind 404; 404 only means "no such object" for allowed roles), an allowed role gets
anything but 401/403 and never 5xx. A route missing from `ACCESS` fails the test.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, APIWebSocketRoute, iter_route_contexts
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from cloud.identity.roles import Role
from tests.cloud.booking.conftest import build_library, live_server  # noqa: F401 (fixture)
from tests.cloud.booking.helpers import hourly, slot

ANON = "anonymous"
ALL_ROLES: list[str] = [ANON, *Role]

PUBLIC = "public"
AUTHED = "any authenticated user"
STAFF = "staff/owner of the tenant"
STAFF_OR_ADMIN = "staff/owner of the tenant or super admin"
OWNER = "owner only"
OWNER_OR_ADMIN = "owner or super admin"
SUPER = "super admin only"
DEVICE = "edge-device-signed"
WEBHOOK = "webhook"

ALLOWED: dict[str, set[str]] = {
    PUBLIC: set(ALL_ROLES),
    AUTHED: set(Role),
    STAFF: {Role.LIBRARY_STAFF, Role.LIBRARY_OWNER},
    STAFF_OR_ADMIN: {Role.LIBRARY_STAFF, Role.LIBRARY_OWNER, Role.SUPER_ADMIN},
    OWNER: {Role.LIBRARY_OWNER},
    OWNER_OR_ADMIN: {Role.LIBRARY_OWNER, Role.SUPER_ADMIN},
    SUPER: {Role.SUPER_ADMIN},
}

ACCESS: dict[tuple[str, str], str] = {
    ("GET", "/health"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,
    ("GET", "/.well-known/jwks.json"): PUBLIC,
    ("POST", "/api/v1/auth/register"): PUBLIC,
    ("POST", "/api/v1/auth/login"): PUBLIC,
    ("POST", "/api/v1/auth/refresh"): PUBLIC,
    ("POST", "/api/v1/auth/logout"): PUBLIC,
    ("POST", "/api/v1/auth/otp/request"): PUBLIC,
    ("POST", "/api/v1/auth/otp/verify"): PUBLIC,
    ("POST", "/api/v1/auth/accept-invite"): PUBLIC,
    ("GET", "/api/v1/users/me"): AUTHED,
    ("PATCH", "/api/v1/users/me"): AUTHED,
    ("GET", "/api/v1/users/me/export"): AUTHED,
    ("POST", "/api/v1/users/me/erase"): AUTHED,
    ("POST", "/api/v1/users/me/kyc"): AUTHED,
    ("GET", "/api/v1/users/me/kyc"): AUTHED,
    ("GET", "/api/v1/users/me/id-card.png"): AUTHED,
    ("GET", "/api/v1/users/me/notification-preferences"): AUTHED,
    ("PATCH", "/api/v1/users/me/notification-preferences"): AUTHED,
    ("POST", "/api/v1/users/me/push-tokens"): AUTHED,
    ("GET", "/api/v1/users/me/push-tokens"): AUTHED,
    ("DELETE", "/api/v1/users/me/push-tokens/{token_id}"): AUTHED,
    ("POST", "/api/v1/libraries/{library_id}/announcements"): OWNER,
    ("GET", "/api/v1/libraries/{library_id}/announcements"): OWNER,
    ("POST", "/api/v1/admin/tenants"): SUPER,
    ("GET", "/api/v1/admin/tenants"): SUPER,
    ("POST", "/api/v1/admin/tenants/{tenant_id}/suspend"): SUPER,
    ("POST", "/api/v1/admin/tenants/{tenant_id}/reactivate"): SUPER,
    ("GET", "/api/v1/admin/audit/verify"): SUPER,
    ("GET", "/api/v1/admin/audit"): SUPER,
    ("POST", "/api/v1/tenant/invitations"): OWNER,
    ("GET", "/api/v1/tenant/members"): STAFF,
    ("PATCH", "/api/v1/tenant/members/{user_id}"): OWNER,
    ("GET", "/api/v1/tenant/kyc"): STAFF,
    ("GET", "/api/v1/tenant/sync-conflicts"): STAFF,
    ("POST", "/api/v1/tenant/kyc/{document_id}/decision"): STAFF_OR_ADMIN,
    ("GET", "/api/v1/tenant/audit"): OWNER,
    ("GET", "/api/v1/libraries"): PUBLIC,
    ("POST", "/api/v1/libraries"): STAFF,
    ("GET", "/api/v1/libraries/{library_id}"): PUBLIC,
    ("PATCH", "/api/v1/libraries/{library_id}"): STAFF,
    ("POST", "/api/v1/libraries/{library_id}/zones"): STAFF,
    ("GET", "/api/v1/libraries/{library_id}/zones"): PUBLIC,
    ("PATCH", "/api/v1/zones/{zone_id}"): STAFF,
    ("DELETE", "/api/v1/zones/{zone_id}"): STAFF,
    ("POST", "/api/v1/libraries/{library_id}/seats"): STAFF,
    ("GET", "/api/v1/libraries/{library_id}/seats"): PUBLIC,
    ("PATCH", "/api/v1/seats/{seat_id}"): STAFF,
    ("POST", "/api/v1/libraries/{library_id}/plans"): STAFF,
    ("GET", "/api/v1/libraries/{library_id}/plans"): PUBLIC,
    ("PATCH", "/api/v1/plans/{plan_id}"): STAFF,
    ("GET", "/api/v1/libraries/{library_id}/availability"): PUBLIC,
    ("GET", "/api/v1/libraries/{library_id}/bookings"): STAFF_OR_ADMIN,
    ("POST", "/api/v1/bookings"): AUTHED,
    ("GET", "/api/v1/bookings"): AUTHED,
    ("GET", "/api/v1/bookings/{booking_id}"): AUTHED,
    ("PATCH", "/api/v1/bookings/{booking_id}"): AUTHED,
    ("POST", "/api/v1/bookings/{booking_id}/cancel"): AUTHED,
    ("POST", "/api/v1/bookings/{booking_id}/confirm"): STAFF_OR_ADMIN,
    ("POST", "/api/v1/bookings/{booking_id}/check-in"): STAFF_OR_ADMIN,
    ("GET", "/api/v1/bookings/{booking_id}/pass"): AUTHED,
    ("GET", "/api/v1/bookings/{booking_id}/pass.png"): AUTHED,
    ("POST", "/api/v1/libraries/{library_id}/waitlist"): AUTHED,
    ("GET", "/api/v1/waitlist"): AUTHED,
    ("DELETE", "/api/v1/waitlist/{entry_id}"): AUTHED,
    ("POST", "/api/v1/bookings/series"): AUTHED,
    ("GET", "/api/v1/bookings/series/{series_id}"): AUTHED,
    ("POST", "/api/v1/bookings/series/{series_id}/cancel"): AUTHED,
    ("GET", "/api/v1/users/me/calendar"): AUTHED,
    ("POST", "/api/v1/users/me/calendar/rotate"): AUTHED,
    ("GET", "/api/v1/calendar/{token}.ics"): PUBLIC,  # the secret token in the URL is the credential
    ("POST", "/api/v1/subscriptions"): AUTHED,
    ("GET", "/api/v1/subscriptions/{subscription_id}"): AUTHED,
    ("POST", "/api/v1/subscriptions/{subscription_id}/pause"): AUTHED,
    ("POST", "/api/v1/subscriptions/{subscription_id}/resume"): AUTHED,
    ("POST", "/api/v1/subscriptions/{subscription_id}/confirm"): STAFF_OR_ADMIN,
    ("POST", "/api/v1/subscriptions/{subscription_id}/transfer"): AUTHED,
    ("WS", "/api/v1/libraries/{library_id}/live"): AUTHED,  # ?token=; test_live_socket_by_role
    ("POST", "/api/v1/fleet/devices"): OWNER,
    ("GET", "/api/v1/fleet/devices"): OWNER_OR_ADMIN,
    ("POST", "/api/v1/fleet/devices/{device_id}/enrollment-token"): OWNER,
    ("POST", "/api/v1/fleet/devices/{device_id}/revoke"): OWNER,
    ("POST", "/api/v1/fleet/devices/{device_id}/commands"): OWNER,
    ("GET", "/api/v1/fleet/devices/{device_id}/commands"): OWNER,
    # student pages: empty shells; their data comes from the authenticated API in the browser
    ("GET", "/app"): PUBLIC,
    ("GET", "/app/login"): PUBLIC,
    ("GET", "/app/search"): PUBLIC,
    ("GET", "/app/libraries/{library_id}"): PUBLIC,
    ("GET", "/app/bookings"): PUBLIC,
    ("GET", "/app/bookings/{booking_id}/pass"): PUBLIC,
    ("GET", "/app/pay/return"): PUBLIC,
    ("GET", "/app/static/{filename}"): PUBLIC,
    ("POST", "/api/v1/fleet/enroll"): PUBLIC,  # the one-time enrollment token in the body is the credential
    ("POST", "/api/v1/fleet/keys/rotate"): DEVICE,
    ("POST", "/api/v1/fleet/sync/push"): DEVICE,
    ("GET", "/api/v1/fleet/sync/pull"): DEVICE,
    ("POST", "/api/v1/notifications/unsubscribe"): PUBLIC,  # signed token in the request
    ("GET", "/api/v1/notifications/unsubscribe"): PUBLIC,
    ("POST", "/api/v1/notifications/twilio/status"): WEBHOOK,
    ("POST", "/api/v1/payments/webhooks/razorpay"): WEBHOOK,
    ("POST", "/api/v1/payments/webhooks/stripe"): WEBHOOK,
    ("POST", "/api/v1/payments/orders"): AUTHED,
    ("POST", "/api/v1/payments/verify"): AUTHED,
    ("GET", "/api/v1/payments/{payment_id}"): AUTHED,
    ("GET", "/api/v1/payments/{payment_id}/invoice.pdf"): AUTHED,
    ("POST", "/api/v1/payments/{payment_id}/refund"): STAFF_OR_ADMIN,
    ("POST", "/api/v1/payments/bookings/{booking_id}/cancel"): AUTHED,
    ("GET", "/dashboard"): PUBLIC,  # dashboard pages are empty shells; their data comes from the API
    ("GET", "/dashboard/owner"): PUBLIC,
    ("GET", "/dashboard/admin"): PUBLIC,
    ("GET", "/api/v1/dashboard/libraries"): STAFF,
    ("GET", "/api/v1/analytics/libraries/{library_id}/occupancy"): STAFF_OR_ADMIN,
    ("GET", "/api/v1/analytics/libraries/{library_id}/summary"): STAFF_OR_ADMIN,
    ("GET", "/api/v1/analytics/libraries/{library_id}/forecast"): STAFF_OR_ADMIN,
    ("GET", "/api/v1/libraries/{library_id}/best-time"): PUBLIC,
    ("GET", "/api/v1/analytics/revenue"): OWNER_OR_ADMIN,
    ("GET", "/api/v1/admin/analytics/overview"): SUPER,
    ("GET", "/api/v1/admin/fleet"): SUPER,
    ("GET", "/api/v1/payments/{payment_id}/credit-notes"): AUTHED,
    ("GET", "/api/v1/payments/{payment_id}/credit-notes/{number}.pdf"): AUTHED,
    ("POST", "/api/v1/subscriptions/{subscription_id}/renewal-order"): AUTHED,
    ("GET", "/api/v1/tenant/dues"): STAFF,
    ("GET", "/api/v1/users/me/dues"): AUTHED,
    ("GET", "/api/v1/tenant/billing"): OWNER,
    ("PUT", "/api/v1/tenant/billing"): OWNER,
}
# webhooks: 400 for an unsigned body; 404 while the gateway/channel is not configured (test settings)
WEBHOOK_STATUSES = {400, 404}


def app_routes(app: FastAPI) -> Iterator[tuple[str, str]]:
    """(method, path) of every API route of the app, websockets as method "WS"."""
    for context in iter_route_contexts(app.router.routes):
        route, path = context.original_route, str(context.path)
        if isinstance(route, APIWebSocketRoute):
            yield "WS", path
        elif isinstance(route, APIRoute):
            for method in sorted(route.methods or ()):
                yield method, path


def fill_path(path: str, ids: dict[str, str] | None = None) -> str:
    names = {part.split("}")[0] for part in path.split("{")[1:]}
    given = ids or {}
    return path.format(**{name: given.get(name, str(uuid.uuid4())) for name in names})


def status_is_expected(access: str, role: str, status: int) -> bool:
    if status >= 500:
        return False
    if access == DEVICE:
        return status == 401
    if access == WEBHOOK:
        return status in WEBHOOK_STATUSES
    if role == ANON and access != PUBLIC:
        return status == 401
    if role in ALLOWED[access]:
        return status not in {401, 403}
    return status == 403


def test_every_route_is_classified(cloud_app: FastAPI) -> None:
    routes = set(app_routes(cloud_app))
    assert routes - ACCESS.keys() == set(), "classify these new routes in ACCESS"
    assert ACCESS.keys() - routes == set(), "these routes no longer exist"


async def test_route_by_role_matrix(
    cloud_app: FastAPI, cloud_client: httpx.AsyncClient, make_account: Any
) -> None:
    accounts = {role: await make_account(role) for role in Role}
    failures = []
    for method, path in app_routes(cloud_app):
        if method == "WS":
            continue  # ASGITransport speaks no websocket: test_live_socket_by_role
        access = ACCESS[(method, path)]
        body: dict[str, Any] | None = {} if method in {"POST", "PATCH"} else None
        for role in ALL_ROLES:
            headers = {} if role == ANON else accounts[Role(role)].headers
            response = await cloud_client.request(method, fill_path(path), json=body, headers=headers)
            if not status_is_expected(access, role, response.status_code):
                failures.append((method, path, access, role, response.status_code, response.text[:100]))
    assert not failures, failures


async def test_owner_of_another_tenant_cannot_touch_its_objects(
    cloud_client: httpx.AsyncClient, make_account: Any
) -> None:
    owner_b = await make_account(Role.LIBRARY_OWNER)
    owner_a = await make_account(Role.LIBRARY_OWNER)
    student = await make_account(Role.STUDENT)
    library_b = await build_library(cloud_client, owner_b, name="Tenant B Library")
    booked = await cloud_client.post(
        "/api/v1/bookings",
        json=hourly(library_b, "A1", slot(2, "10:00", "12:00")),
        headers=student.headers,
    )
    assert booked.status_code == 201, booked.text
    ids = {
        "library_id": library_b.id,
        "zone_id": str(library_b.zones["Quiet"]["id"]),
        "seat_id": str(library_b.seat("A1")["id"]),
        "plan_id": str(library_b.plans["Hourly"]["id"]),
        "booking_id": str(booked.json()["id"]),
    }
    scoped = [
        ("PATCH", "/api/v1/libraries/{library_id}", {"name": "Taken"}),
        ("PATCH", "/api/v1/zones/{zone_id}", {"name": "Taken"}),
        ("PATCH", "/api/v1/seats/{seat_id}", {}),
        ("PATCH", "/api/v1/plans/{plan_id}", {"name": "Taken"}),
        ("GET", "/api/v1/libraries/{library_id}/bookings?date=" + booked.json()["start"][:10], None),
        ("GET", "/api/v1/bookings/{booking_id}", None),
        ("PATCH", "/api/v1/bookings/{booking_id}", {}),
        ("GET", "/api/v1/bookings/{booking_id}/pass", None),
        ("GET", "/api/v1/bookings/{booking_id}/pass.png", None),
        ("POST", "/api/v1/bookings/{booking_id}/cancel", {}),
        ("POST", "/api/v1/bookings/{booking_id}/confirm", {}),
        ("POST", "/api/v1/bookings/{booking_id}/check-in", {}),
        ("POST", "/api/v1/libraries/{library_id}/zones", {"name": "Intruder"}),
        (
            "POST",
            "/api/v1/libraries/{library_id}/plans",
            {"name": "X", "kind": "hourly", "price_minor": 1, "currency": "INR"},
        ),
        ("DELETE", "/api/v1/zones/{zone_id}", None),
    ]
    for method, path, body in scoped[:6]:  # the same calls work for tenant B's own owner: ids are real
        response = await cloud_client.request(
            method, fill_path(path, ids), json=body, headers=owner_b.headers
        )
        assert response.status_code == 200, (method, path, response.text)
    failures = []
    for method, path, body in scoped:
        response = await cloud_client.request(
            method, fill_path(path, ids), json=body, headers=owner_a.headers
        )
        if response.status_code not in {403, 404}:
            failures.append((method, path, response.status_code, response.text[:100]))
    assert not failures, failures


async def test_super_admin_without_tenant_gets_tenant_required_before_body_validation(
    cloud_client: httpx.AsyncClient, make_account: Any
) -> None:
    admin = await make_account(Role.SUPER_ADMIN)
    zones = fill_path("/api/v1/libraries/{id}/zones")
    for path in ("/api/v1/libraries", "/api/v1/tenant/invitations", zones):
        response = await cloud_client.post(path, json={}, headers=admin.headers)
        assert response.status_code == 403, (path, response.text)
        assert response.json()["error"]["code"] == "tenant_required"


def _bearer(account: Any) -> str:
    return str(account.headers["Authorization"].split(" ", 1)[1])


async def _live_close_code(url: str) -> int | None:
    """The close code the server sends before any data (None: it sent a message instead)."""
    async with connect(url) as socket:
        try:
            await asyncio.wait_for(socket.recv(), 10)
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None
    return None


async def test_live_socket_by_role(
    cloud_client: httpx.AsyncClient,
    make_account: Any,
    live_server: str,  # noqa: F811 (fixture imported above)
) -> None:
    owner = await make_account(Role.LIBRARY_OWNER)
    library = await build_library(cloud_client, owner, name="Matrix Live")
    other_owner = await make_account(Role.LIBRARY_OWNER)
    other_staff = await make_account(Role.LIBRARY_STAFF, tenant_id=other_owner.tenant_id)
    own_staff = await make_account(Role.LIBRARY_STAFF, tenant_id=owner.tenant_id)
    base = live_server.replace("http", "ws") + f"/api/v1/libraries/{library.id}/live"
    for refused in (base, f"{base}?token=", f"{base}?token=forged"):
        with pytest.raises(InvalidStatus):  # closed before the handshake completes: HTTP 403
            async with connect(refused):
                pass
    for foreign in (other_owner, other_staff):
        assert await _live_close_code(f"{base}?token={_bearer(foreign)}") == 4403
    allowed = [owner, own_staff, await make_account(Role.STUDENT), await make_account(Role.SUPER_ADMIN)]
    for account in allowed:
        async with connect(f"{base}?token={_bearer(account)}") as socket:
            snapshot = json.loads(await asyncio.wait_for(socket.recv(), 10))
        assert snapshot["type"] == "snapshot", account.role
        assert {seat["label"] for seat in snapshot["seats"]} == {"A1", "A2", "A3", "C1"}
