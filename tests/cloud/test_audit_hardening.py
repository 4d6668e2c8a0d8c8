"""Audit log hardening: detail retention under a chain of detail digests, and the migration that
re-links v1 chains."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from cloud import migrations
from cloud.audit.service import verify_chain
from cloud.db import platform_scope
from cloud.identity.privacy import purge_expired
from cloud.identity.roles import Role


async def _tenant_with_trail(cloud_client: httpx.AsyncClient, make_account: Any, invites: int = 4) -> Any:
    owner = await make_account(Role.LIBRARY_OWNER)
    for i in range(invites):
        response = await cloud_client.post(
            "/api/v1/tenant/invitations", json={"email": f"staff{i}@example.com"}, headers=owner.headers
        )
        assert response.status_code == 201, response.text
    return owner


def _rows(session: Session, chain: str) -> list[Any]:
    return list(
        session.execute(
            text("SELECT id, occurred_at, detail FROM audit_log WHERE chain = :c ORDER BY id"), {"c": chain}
        ).all()
    )


async def test_retention_drops_old_details_and_the_chain_still_verifies(
    cloud_app: FastAPI, cloud_client: httpx.AsyncClient, make_account: Any, owner_session: Session
) -> None:
    owner = await _tenant_with_trail(cloud_client, make_account)
    chain = str(owner.tenant_id)
    rows = _rows(owner_session, chain)
    assert len(rows) >= 5 and all(row.detail is not None for row in rows)
    cutoff_row = rows[3]
    with cloud_app.state.session_factory() as session:
        platform_scope(session)
        counts = purge_expired(
            session,
            cutoff_row.occurred_at + dt.timedelta(days=30),
            audit_detail_retention=dt.timedelta(days=30),
        )
    older = [row.id for row in rows if row.occurred_at < cutoff_row.occurred_at]
    assert counts["audit_details"] >= len(older) > 0
    after = {row.id: row.detail for row in _rows(owner_session, chain)}
    assert all(after[row_id] is None for row_id in older)
    assert all(after[row.id] is not None for row in rows if row.id not in older)
    verification = verify_chain(owner_session)
    assert verification.ok, verification.problems
    assert verification.purged_details >= len(older)
    purge_row = owner_session.execute(
        text("SELECT detail FROM audit_log WHERE action = 'audit.purge_detail' AND chain = 'platform'")
    ).scalar_one()
    assert purge_row["rows"] == counts["audit_details"]

    trail = (await cloud_client.get("/api/v1/tenant/audit?limit=1000", headers=owner.headers)).json()
    assert {entry["id"]: entry["detail"] for entry in trail}[older[0]] is None

    kept = rows[-1].id
    tampering = {
        'UPDATE audit_log SET detail = \'{"email": "x"}\' WHERE id = :purged': (older[0], "detail"),
        'UPDATE audit_log SET detail = \'{"role": "library_owner"}\' WHERE id = :kept': (kept, "detail"),
        "UPDATE audit_log SET detail_sha256 = repeat('a', 64) WHERE id = :purged": (older[0], "row hash"),
        "UPDATE audit_log SET target = 'email:x' WHERE id = :purged": (older[0], "row hash"),
        "UPDATE audit_log SET actor_id = NULL WHERE id = :kept": (kept, "row hash"),
    }
    for statement, (row_id, what) in tampering.items():
        owner_session.execute(text(statement), {"purged": older[0], "kept": kept})
        problems = verify_chain(owner_session).problems
        assert [(p.row_id, what in p.problem) for p in problems] == [(row_id, True)], statement
        owner_session.rollback()


def test_app_role_may_only_null_old_details(cloud_app: FastAPI) -> None:
    with cloud_app.state.engine.connect() as conn:
        for statement in ("UPDATE audit_log SET detail = NULL", "DELETE FROM audit_log WHERE detail IS NULL"):
            with pytest.raises(DBAPIError, match="permission denied"):
                conn.execute(text(statement))
            conn.rollback()
        with pytest.raises(DBAPIError, match="must not be in the future"):
            conn.execute(text("SELECT audit_purge_detail(now() + interval '1 day')"))
        conn.rollback()
        with pytest.raises(DBAPIError, match="permission denied"):  # the v1 writer the migration kept
            conn.execute(text("SELECT audit_append_v1(NULL, NULL, 'x', '', '', '{}')"))
        conn.rollback()
        conn.execute(text("SELECT audit_purge_detail(now())"))  # granted: the retention path


def _append_v1_rows(session: Session) -> None:
    tenant = "00000000-0000-4000-8000-000000000001"
    for i in range(3):
        session.execute(
            text("SELECT audit_append(CAST(:t AS uuid), NULL, 'staff.invite', :target, '1.2.3.4', :d)"),
            {"t": tenant, "target": f"email:s{i}@example.com", "d": json.dumps({"n": i})},
        )
        session.execute(text("SELECT audit_append(NULL, NULL, 'tenant.create', '', '', '{}')"))
    session.commit()


def test_migration_relinks_verified_v1_chains_and_refuses_broken_ones(
    database_url: str, owner_session: Session
) -> None:
    migrations.downgrade(database_url, "0950_audit_detail_digest@-1")
    _append_v1_rows(owner_session)
    old_heads = dict(
        owner_session.execute(
            text("SELECT DISTINCT ON (chain) chain, hash FROM audit_log ORDER BY chain, id DESC")
        ).all()
    )
    owner_session.commit()  # no open transaction may hold a lock the migration needs
    migrations.upgrade(database_url, "heads")
    verification = verify_chain(owner_session)
    assert verification.ok and verification.rows_checked == 7, verification.problems
    rehash = owner_session.execute(
        text("SELECT detail FROM audit_log WHERE action = 'audit.rehash'")
    ).scalar_one()
    assert rehash["previous_heads"] == old_heads
    owner_session.commit()

    migrations.downgrade(database_url, "0950_audit_detail_digest@-1")
    assert owner_session.execute(text("SELECT count(*) FROM audit_log")).scalar_one() == 7
    owner_session.execute(
        text("UPDATE audit_log SET ip = '6.6.6.6' WHERE id = (SELECT min(id) FROM audit_log)")
    )
    owner_session.commit()
    before = owner_session.execute(text("SELECT id, hash FROM audit_log ORDER BY id")).all()
    owner_session.commit()
    with pytest.raises(DBAPIError, match="fails verification"):
        migrations.upgrade(database_url, "heads")
    assert owner_session.execute(text("SELECT id, hash FROM audit_log ORDER BY id")).all() == before
