"""Revenue reports: payments minus refunds per key, JSON and CSV, the owner's tenant only."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

import httpx

from cloud.identity.roles import Role
from tests.cloud.booking.conftest import build_library

TOTALS_SQL = """
SELECT (SELECT coalesce(sum(captured_minor), 0) FROM payments WHERE tenant_id = :tenant
          AND status IN ('captured', 'partially_refunded', 'refunded')) AS gross,
       (SELECT coalesce(sum(amount_minor), 0) FROM payment_refunds WHERE tenant_id = :tenant) AS refunds,
       (SELECT count(*) FROM payments WHERE tenant_id = :tenant AND captured_at IS NOT NULL) AS payments
"""


def window() -> str:
    today = dt.datetime.now(dt.UTC).date()
    return f"from={today - dt.timedelta(days=60)}&to={today + dt.timedelta(days=1)}"


def totals(rows: list[dict[str, Any]]) -> tuple[int, int, int, int]:
    return (
        sum(row["payments"] for row in rows),
        sum(row["gross_minor"] for row in rows),
        sum(row["refunds_minor"] for row in rows),
        sum(row["net_minor"] for row in rows),
    )


async def report(client: httpx.AsyncClient, headers: dict[str, str], query: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/analytics/revenue?{query}&{window()}", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_revenue_sums_match_payments_minus_refunds_for_every_grouping(
    cloud_client: httpx.AsyncClient, make_account: Any, history_seeder: Any, platform_sql: Any
) -> None:
    owner = await make_account(Role.LIBRARY_OWNER)
    setup = await build_library(cloud_client, owner, timezone="Asia/Kolkata")
    counts = history_seeder(setup, days=21)
    assert counts["refunds"] > 0
    other = await make_account(Role.LIBRARY_OWNER)
    history_seeder(await build_library(cloud_client, other, name="Elsewhere"), days=7)
    expected = platform_sql(TOTALS_SQL, tenant=owner.tenant_id)[0]
    want = (expected.payments, expected.gross, expected.refunds, expected.gross - expected.refunds)

    for group_by in ("month", "day", "library", "plan", "method"):
        body = await report(cloud_client, owner.headers, f"group_by={group_by}")
        assert body["group_by"] == group_by and "from" in body and "to" in body
        assert totals(body["rows"]) == want, group_by
        assert all(row["currency"] == "INR" for row in body["rows"])
    by_library = await report(cloud_client, owner.headers, "group_by=library")
    assert [(row["key"], row["label"]) for row in by_library["rows"]] == [(setup.id, "Sunrise Library")]
    by_plan = await report(cloud_client, owner.headers, "group_by=plan")
    assert [row["label"] for row in by_plan["rows"]] == ["Hourly"]
    by_method = await report(cloud_client, owner.headers, "group_by=method")
    assert {row["key"] for row in by_method["rows"]} <= {"online", "cash", "upi"}
    by_day = await report(cloud_client, owner.headers, "group_by=day")
    assert len(by_day["rows"]) >= 10 and by_day["rows"] == sorted(by_day["rows"], key=lambda row: row["key"])


async def test_csv_export_parses_to_the_json_rows(
    cloud_client: httpx.AsyncClient, make_account: Any, history_seeder: Any
) -> None:
    owner = await make_account(Role.LIBRARY_OWNER)
    history_seeder(await build_library(cloud_client, owner), days=10)
    body = await report(cloud_client, owner.headers, "group_by=day")
    response = await cloud_client.get(
        f"/api/v1/analytics/revenue?group_by=day&format=csv&{window()}", headers=owner.headers
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    parsed = list(csv.DictReader(io.StringIO(response.text)))
    assert len(parsed) == len(body["rows"]) > 0
    numeric = ("payments", "gross_minor", "refunds_minor", "net_minor")
    for row, want in zip(parsed, body["rows"], strict=True):
        assert {**row, **{key: int(row[key]) for key in numeric}} == want


async def test_an_owner_sees_only_their_tenant_and_a_super_admin_sees_all(
    cloud_client: httpx.AsyncClient, make_account: Any, history_seeder: Any, platform_sql: Any
) -> None:
    owner_a = await make_account(Role.LIBRARY_OWNER)
    owner_b = await make_account(Role.LIBRARY_OWNER)
    history_seeder(await build_library(cloud_client, owner_a, name="A"), days=5)
    library_b = await build_library(cloud_client, owner_b, name="B")
    history_seeder(library_b, days=5)
    net = {
        account.tenant_id: row.gross - row.refunds
        for account in (owner_a, owner_b)
        for row in platform_sql(TOTALS_SQL, tenant=account.tenant_id)
    }
    mine = await report(cloud_client, owner_a.headers, "group_by=library")
    assert totals(mine["rows"])[3] == net[owner_a.tenant_id]
    assert [row["label"] for row in mine["rows"]] == ["A"]
    foreign_tenant = await cloud_client.get(
        f"/api/v1/analytics/revenue?tenant_id={owner_b.tenant_id}", headers=owner_a.headers
    )
    assert foreign_tenant.status_code == 403
    foreign_library = await cloud_client.get(
        f"/api/v1/analytics/revenue?library_id={library_b.id}", headers=owner_a.headers
    )
    assert foreign_library.status_code == 404
    student = await make_account(Role.STUDENT)
    staff = await make_account(Role.LIBRARY_STAFF, tenant_id=owner_a.tenant_id)
    for account in (student, staff):
        assert (
            await cloud_client.get("/api/v1/analytics/revenue", headers=account.headers)
        ).status_code == 403

    admin = await make_account(Role.SUPER_ADMIN)
    everyone = await report(cloud_client, admin.headers, "group_by=library")
    assert {row["label"] for row in everyone["rows"]} >= {"A", "B"}
    only_b = await report(cloud_client, admin.headers, f"group_by=library&tenant_id={owner_b.tenant_id}")
    assert [row["label"] for row in only_b["rows"]] == ["B"]
    assert totals(only_b["rows"])[3] == net[owner_b.tenant_id]
    audited = platform_sql("SELECT count(*) AS n FROM audit_log WHERE action = 'analytics.revenue.read'")
    assert audited[0].n == 2


async def test_bad_report_parameters_get_422(cloud_client: httpx.AsyncClient, make_account: Any) -> None:
    owner = await make_account(Role.LIBRARY_OWNER)
    for query in (
        "group_by=week",
        "format=xml",
        "from=2026-02-01&to=2026-01-01",
        "from=2020-01-01&to=2026-01-01",
        "from=yesterday",
        "library_id=nope",
    ):
        response = await cloud_client.get(f"/api/v1/analytics/revenue?{query}", headers=owner.headers)
        assert response.status_code == 422 and "error" in response.json(), query
