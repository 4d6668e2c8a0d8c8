"""Demo seed (idempotent, every role logs in) and per-tenant pass keys."""

from __future__ import annotations

import datetime as dt
import uuid

import httpx
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.orm import Session

from cloud.config import CloudSettings
from cloud.db import platform_scope, tenant_scope
from cloud.seed import issue_demo_pass, seed_demo
from cloud.tenancy.passkeys import current_pass_key, pass_public_keys, rotate_pass_key
from shared.passes import short_id, verify_pass


async def test_seed_is_idempotent_and_every_account_logs_in(
    cloud_settings: CloudSettings, cloud_client: httpx.AsyncClient
) -> None:
    first = seed_demo(cloud_settings)
    second = seed_demo(cloud_settings)
    assert first == second
    assert len(first["seats"]) == 40
    assert [s["label"] for s in first["seats"]][:2] == ["A01", "A02"]
    assert set(first["accounts"]) == {"super_admin", "owner", "staff", "student"}
    assert 4 <= len(first["accounts"]["staff"]["pin"]) <= 6
    expected_roles = {
        "super_admin": "super_admin",
        "owner": "library_owner",
        "staff": "library_staff",
        "student": "student",
    }
    for key, account in first["accounts"].items():
        response = await cloud_client.post(
            "/api/v1/auth/login", json={"email": account["email"], "password": account["password"]}
        )
        assert response.status_code == 200, response.text
        assert response.json()["role"] == expected_roles[key]
        if key in ("owner", "staff"):
            assert response.json()["tenant_id"] == first["tenant_id"]


def test_demo_pass_verifies_offline_with_the_published_keys(
    cloud_settings: CloudSettings, cloud_app: FastAPI
) -> None:
    seeded = seed_demo(cloud_settings)
    now = dt.datetime.now(dt.UTC)
    text_pass = issue_demo_pass(cloud_settings, seeded, now=now)
    assert len(text_pass) <= 180
    with cloud_app.state.session_factory() as session:
        tenant_scope(session, uuid.UUID(seeded["tenant_id"]), None)
        keys = pass_public_keys(session, uuid.UUID(seeded["tenant_id"]))
    claims = verify_pass(
        text_pass, public_keys=keys, library=short_id(seeded["library_id"]), now=now + dt.timedelta(minutes=1)
    )
    assert claims.holder == short_id(seeded["accounts"]["student"]["user_id"])
    assert set(keys) == set(seeded["pass_keys"])


def test_pass_keys_are_encrypted_tenant_scoped_and_rotate(
    cloud_app: FastAPI, cloud_settings: CloudSettings, owner_session: Session
) -> None:
    seeded = seed_demo(cloud_settings)
    tenant = uuid.UUID(seeded["tenant_id"])
    master = cloud_app.state.master_key
    with cloud_app.state.session_factory() as session:
        platform_scope(session)
        old_kid, old_key = current_pass_key(session, tenant, master)
        new_kid = rotate_pass_key(session, tenant, master)
        session.commit()
        kid, _key = current_pass_key(session, tenant, master)
        assert kid == new_kid != old_kid
        assert set(pass_public_keys(session, tenant)) == {old_kid, new_kid}
    with cloud_app.state.session_factory() as session:
        tenant_scope(session, uuid.uuid4(), None)  # some other tenant sees none of them
        assert pass_public_keys(session, tenant) == {}
    blob = owner_session.execute(
        text("SELECT private_key_enc FROM pass_signing_keys WHERE kid = :k"), {"k": old_kid}
    ).scalar_one()
    assert old_key.private_bytes_raw() not in bytes(blob)
