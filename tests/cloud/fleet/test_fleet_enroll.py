"""Enrolment, revocation and key rotation over real HTTP against a live uvicorn cloud."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from cloud.identity.roles import Role
from edge.enroll import EnrollmentFailed, enroll
from edge.store import Store
from edge.sync import SyncClient, SyncError, SyncSettings
from edge.sync_store import NotEnrolled, SyncStore
from shared.passes import generate_signing_key, public_key_to_text

from .conftest import LiveCloud, Tenant, create_device, make_tenant, make_user


def test_enrolment_stores_identity_pass_keys_and_config(
    live_cloud: LiveCloud, tenant: Tenant, tmp_path: Path
) -> None:
    device_id, token = create_device(live_cloud, tenant)
    store = Store(tmp_path / "edge.sqlite3")
    with pytest.raises(NotEnrolled):
        SyncStore(store).identity()

    enrollment = enroll(live_cloud.url, token, store)

    identity = SyncStore(store).identity()
    assert identity.device_id == device_id == enrollment.device_id
    assert identity.library_id == str(tenant.library_id)
    assert identity.key_id.startswith("dk_")
    assert store.get_setting("library_timezone") == "Asia/Kolkata"
    assert store.get_setting("device_config") == '{"sync_interval": 30}'
    with live_cloud.owner_session() as session:
        public = session.execute(
            text("SELECT public_key, status FROM edge_device_keys WHERE key_id = :k"), {"k": identity.key_id}
        ).one()
        status = session.execute(
            text("SELECT status FROM edge_devices WHERE id = :d"), {"d": device_id}
        ).scalar()
        token_hash = session.execute(
            text("SELECT enroll_token_hash FROM edge_devices WHERE id = :d"), {"d": device_id}
        ).scalar()
    assert public == (public_key_to_text(identity.private_key.public_key()), "active")
    assert status == "active" and token_hash is None


def test_token_is_single_use(live_cloud: LiveCloud, tenant: Tenant, tmp_path: Path) -> None:
    _, token = create_device(live_cloud, tenant)
    enroll(live_cloud.url, token, Store(tmp_path / "a.sqlite3"))
    with pytest.raises(EnrollmentFailed) as failure:
        enroll(live_cloud.url, token, Store(tmp_path / "b.sqlite3"))
    assert failure.value.status == 401 and failure.value.code == "invalid_enrollment_token"


def test_expired_token_is_refused(live_cloud: LiveCloud, tenant: Tenant, tmp_path: Path) -> None:
    device_id, token = create_device(live_cloud, tenant)
    with live_cloud.owner_session() as session:
        session.execute(
            text("UPDATE edge_devices SET enroll_expires_at = now() - interval '1 second' WHERE id = :d"),
            {"d": device_id},
        )
        session.commit()
    with pytest.raises(EnrollmentFailed) as failure:
        enroll(live_cloud.url, token, Store(tmp_path / "edge.sqlite3"))
    assert failure.value.code == "invalid_enrollment_token"


def test_token_expires_in_24_hours(live_cloud: LiveCloud, tenant: Tenant) -> None:
    response = httpx.post(
        f"{live_cloud.url}/api/v1/fleet/devices",
        json={"library_id": str(tenant.library_id), "name": "hall"},
        headers=tenant.owner_headers,
    )
    expires = dt.datetime.fromisoformat(response.json()["expires_at"])
    left = expires - dt.datetime.now(dt.UTC)
    assert dt.timedelta(hours=23, minutes=59) < left <= dt.timedelta(hours=24)


def test_bad_enrol_requests_get_clear_errors(live_cloud: LiveCloud, tenant: Tenant) -> None:
    _, token = create_device(live_cloud, tenant)
    bad_key = httpx.post(
        f"{live_cloud.url}/api/v1/fleet/enroll", json={"token": token, "public_key": "@" * 43}
    )
    assert bad_key.status_code == 422 and bad_key.json()["error"]["code"] == "invalid_public_key"
    garbage = httpx.post(f"{live_cloud.url}/api/v1/fleet/enroll", content=b"{not json")
    assert garbage.status_code == 422 and "error" in garbage.json()


def test_only_owners_create_devices_for_their_own_libraries(live_cloud: LiveCloud, tenant: Tenant) -> None:
    student = make_user(live_cloud, Role.STUDENT)
    body = {"library_id": str(tenant.library_id), "name": "x"}
    response = httpx.post(f"{live_cloud.url}/api/v1/fleet/devices", json=body, headers=student)
    assert response.status_code == 403
    other = make_tenant(live_cloud)
    response = httpx.post(f"{live_cloud.url}/api/v1/fleet/devices", json=body, headers=other.owner_headers)
    assert response.status_code == 404


async def test_revoked_device_is_refused_and_cannot_re_enrol(
    live_cloud: LiveCloud, tenant: Tenant, tmp_path: Path
) -> None:
    device_id, token = create_device(live_cloud, tenant)
    store = Store(tmp_path / "edge.sqlite3")
    enroll(live_cloud.url, token, store)
    client = SyncClient(store, SyncSettings())
    assert await client.pull_once() == 1

    owner = httpx.AsyncClient(base_url=live_cloud.url, headers=tenant.owner_headers)
    revoked = await owner.post(f"/api/v1/fleet/devices/{device_id}/revoke")
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    with pytest.raises(SyncError) as failure:
        await client.pull_once()
    assert failure.value.status == 401 and "unknown_key" in str(failure.value)
    again = await owner.post(f"/api/v1/fleet/devices/{device_id}/enrollment-token")
    assert again.status_code == 409
    await owner.aclose()
    await client.stop()


async def test_re_enrolment_with_a_new_token_replaces_the_key(
    live_cloud: LiveCloud, tenant: Tenant, tmp_path: Path
) -> None:
    device_id, token = create_device(live_cloud, tenant)
    old_store = Store(tmp_path / "old.sqlite3")
    enroll(live_cloud.url, token, old_store)
    async with httpx.AsyncClient(base_url=live_cloud.url, headers=tenant.owner_headers) as owner:
        response = await owner.post(f"/api/v1/fleet/devices/{device_id}/enrollment-token")
    token2 = response.json()["enrollment_token"]
    new_store = Store(tmp_path / "new.sqlite3")
    enroll(live_cloud.url, token2, new_store)
    assert SyncStore(new_store).identity().device_id == device_id

    old, new = SyncClient(old_store), SyncClient(new_store)
    with pytest.raises(SyncError):
        await old.pull_once()
    assert await new.pull_once() == 1
    await old.stop()
    await new.stop()


async def test_key_rotation_keeps_the_old_key_until_the_new_one_is_used(
    live_cloud: LiveCloud, tenant: Tenant, tmp_path: Path
) -> None:
    _, token = create_device(live_cloud, tenant)
    store = Store(tmp_path / "edge.sqlite3")
    enroll(live_cloud.url, token, store)
    sync_store = SyncStore(store)
    old = sync_store.identity()
    client = SyncClient(store)

    # registration only: the new key is pending, the old one still signs
    sync_store.save_next_key(generate_signing_key())
    signed_old = httpx.AsyncClient(base_url=live_cloud.url, auth=_signer(old.key_id, old.private_key))
    response = await client._request(
        "POST", "/api/v1/fleet/keys/rotate",
        json={"public_key": public_key_to_text(sync_store.next_key()[1].public_key())},  # type: ignore[index]
    )  # fmt: skip
    new_key_id = response.json()["key_id"]
    assert (await signed_old.get("/api/v1/fleet/sync/pull")).status_code == 200

    # first use of the new key confirms it and retires the old one
    sync_store.set_next_key_id(new_key_id)
    assert await client.pull_once() == 1
    assert sync_store.identity().key_id == new_key_id
    refused = await signed_old.get("/api/v1/fleet/sync/pull")
    assert refused.status_code == 401 and refused.json()["error"]["details"]["reason"] == "unknown_key"
    await signed_old.aclose()
    await client.stop()


def _signer(key_id: str, private_key: object) -> httpx.Auth:
    from shared.signing import HttpxRequestSigner

    return HttpxRequestSigner(key_id, private_key)  # type: ignore[arg-type]
