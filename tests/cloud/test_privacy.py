"""GDPR export and erasure, retention purge."""

from __future__ import annotations

import datetime as dt

import httpx
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.orm import Session

from cloud.audit.service import verify_chain
from cloud.db import platform_scope
from cloud.identity.privacy import purge_expired
from cloud.identity.roles import Role


async def test_export_contains_profile_memberships_and_activity(
    cloud_client: httpx.AsyncClient, make_account
) -> None:
    owner = await make_account(Role.LIBRARY_OWNER)
    response = await cloud_client.get("/api/v1/users/me/export", headers=owner.headers)
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["profile"]["email"] == owner.email
    assert data["memberships"][0]["role"] == "library_owner"
    assert any(entry["action"] == "auth.login" for entry in data["activity"])
    assert data["sessions"]


async def test_erase_pseudonymises_and_blocks_login(
    cloud_client: httpx.AsyncClient, make_account, owner_session: Session
) -> None:
    student = await make_account(Role.STUDENT)
    wrong = await cloud_client.post(
        "/api/v1/users/me/erase", json={"password": "nope"}, headers=student.headers
    )
    assert wrong.status_code == 401
    erased = await cloud_client.post(
        "/api/v1/users/me/erase", json={"password": student.password}, headers=student.headers
    )
    assert erased.status_code == 204
    row = owner_session.execute(
        text("SELECT email, full_name, phone_enc, password_hash, status FROM users WHERE id = :id"),
        {"id": student.id},
    ).one()
    assert student.email not in row.email and row.full_name == "" and row.phone_enc is None
    assert row.password_hash is None and row.status == "erased"
    login = await cloud_client.post(
        "/api/v1/auth/login", json={"email": student.email, "password": student.password}
    )
    assert login.status_code == 401
    assert (await cloud_client.get("/api/v1/users/me", headers=student.headers)).status_code == 404
    assert verify_chain(owner_session).ok


async def test_retention_purges_old_refresh_tokens(
    cloud_app: FastAPI, make_account, owner_session: Session
) -> None:
    await make_account(Role.STUDENT)
    owner_session.execute(text("UPDATE refresh_tokens SET expires_at = now() - interval '40 days'"))
    owner_session.commit()
    with cloud_app.state.session_factory() as session:
        platform_scope(session)
        purged = purge_expired(session, dt.datetime.now(dt.UTC))
    assert purged["refresh_tokens"] == 1
    assert owner_session.execute(text("SELECT count(*) FROM refresh_tokens")).scalar_one() == 0
