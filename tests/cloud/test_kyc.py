"""KYC upload (content-checked, size-limited, encrypted on disk), staff review, ID card."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.orm import Session

from cloud.config import CloudSettings
from cloud.identity.roles import Role
from cloud.kyc.storage import EncryptedFileStore

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 200 + b"the student's face"
PDF = b"%PDF-1.7\n" + b"id card contents " * 20


def _stored_files(settings: CloudSettings) -> list[Path]:
    return list(Path(settings.data_dir, "kyc").glob("*.bin"))


def _upload(data: bytes, number: str = "ABCD 1234 5678", filename: str = "id.png", tenant_id=None) -> dict:
    form = {"document_type": "aadhaar", "document_number": number}
    if tenant_id:
        form["tenant_id"] = str(tenant_id)
    return {"files": {"document": (filename, io.BytesIO(data), "image/png")}, "data": form}


async def test_upload_is_encrypted_on_disk_and_reviewed_by_staff(
    cloud_client: httpx.AsyncClient,
    cloud_app: FastAPI,
    cloud_settings: CloudSettings,
    make_account,
    owner_session: Session,
) -> None:
    owner = await make_account(Role.LIBRARY_OWNER)
    staff = await make_account(Role.LIBRARY_STAFF, tenant_id=owner.tenant_id)
    student = await make_account(Role.STUDENT)
    response = await cloud_client.post(
        "/api/v1/users/me/kyc", headers=student.headers, **_upload(PNG, tenant_id=owner.tenant_id)
    )
    assert response.status_code == 201, response.text
    doc = response.json()
    assert doc["content_type"] == "image/png" and doc["status"] == "pending"
    assert doc["document_number_masked"] == "********5678"

    files = _stored_files(cloud_settings)
    assert len(files) == 1
    on_disk = files[0].read_bytes()
    assert b"the student's face" not in on_disk and PNG[:8] not in on_disk
    assert EncryptedFileStore(files[0].parent, cloud_app.state.master_key).get(files[0].stem) == PNG
    stored_number = owner_session.execute(text("SELECT document_number_enc FROM kyc_documents")).scalar_one()
    assert b"ABCD12345678" not in bytes(stored_number)

    queue = await cloud_client.get("/api/v1/tenant/kyc?status=pending", headers=staff.headers)
    assert [d["id"] for d in queue.json()] == [doc["id"]]
    no_reason = await cloud_client.post(
        f"/api/v1/tenant/kyc/{doc['id']}/decision", json={"decision": "rejected"}, headers=staff.headers
    )
    assert no_reason.status_code == 422
    verified = await cloud_client.post(
        f"/api/v1/tenant/kyc/{doc['id']}/decision", json={"decision": "verified"}, headers=staff.headers
    )
    assert verified.json()["status"] == "verified"
    again = await cloud_client.post(
        f"/api/v1/tenant/kyc/{doc['id']}/decision",
        json={"decision": "rejected", "reason": "x"},
        headers=staff.headers,
    )
    assert again.status_code == 409
    mine = await cloud_client.get("/api/v1/users/me/kyc", headers=student.headers)
    assert mine.json()[0]["status"] == "verified"
    actions = owner_session.execute(text("SELECT action FROM audit_log")).scalars().all()
    assert "kyc.decision" in actions

    other_owner = await make_account(Role.LIBRARY_OWNER)
    assert (await cloud_client.get("/api/v1/tenant/kyc", headers=other_owner.headers)).json() == []
    forbidden = await cloud_client.get("/api/v1/tenant/kyc", headers=student.headers)
    assert forbidden.status_code == 403


@pytest.mark.parametrize(
    "data, filename, status",
    [
        (b"GIF89a" + b"\x00" * 50, "id.png", 415),  # name says png, content is a GIF
        (b"MZ\x90\x00 executable", "id.pdf", 415),
        (b"", "id.png", 422),
    ],
)
async def test_bad_uploads_are_rejected_and_leave_nothing(
    cloud_client: httpx.AsyncClient,
    cloud_settings: CloudSettings,
    make_account,
    data: bytes,
    filename: str,
    status: int,
) -> None:
    student = await make_account(Role.STUDENT)
    response = await cloud_client.post(
        "/api/v1/users/me/kyc", headers=student.headers, **_upload(data, filename=filename)
    )
    assert response.status_code == status, response.text
    assert "error" in response.json()
    assert not _stored_files(cloud_settings)


async def test_oversized_upload_is_413(
    cloud_client: httpx.AsyncClient, cloud_settings: CloudSettings, make_account
) -> None:
    student = await make_account(Role.STUDENT)
    big = PDF + b"x" * cloud_settings.max_upload_bytes
    response = await cloud_client.post("/api/v1/users/me/kyc", headers=student.headers, **_upload(big))
    assert response.status_code == 413


async def test_bad_document_number_and_unknown_tenant(cloud_client: httpx.AsyncClient, make_account) -> None:
    student = await make_account(Role.STUDENT)
    bad_number = await cloud_client.post(
        "/api/v1/users/me/kyc", headers=student.headers, **_upload(PDF, number="!!")
    )
    assert bad_number.status_code == 422
    unknown = await cloud_client.post(
        "/api/v1/users/me/kyc",
        headers=student.headers,
        **_upload(PDF, tenant_id="00000000-0000-0000-0000-000000000001"),
    )
    assert unknown.status_code == 422
    assert unknown.json()["error"]["code"] == "unknown_tenant"


async def test_id_card_is_a_png_qr(cloud_client: httpx.AsyncClient, make_account) -> None:
    student = await make_account(Role.STUDENT)
    response = await cloud_client.get("/api/v1/users/me/id-card.png", headers=student.headers)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.content.startswith(b"\x89PNG")
