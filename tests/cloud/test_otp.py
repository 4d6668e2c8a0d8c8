"""Login by phone one-time code."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.orm import Session

PHONE = "+919812345678"


class RecordingSender:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def send_otp(self, phone: str, code: str) -> None:
        self.sent.append((phone, code))


async def _student_with_phone(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/auth/register",
        json={"email": "otp@example.com", "password": "password 123", "phone": "98123 45678"},
    )
    assert response.status_code == 201, response.text


async def test_otp_login(cloud_client: httpx.AsyncClient, cloud_app: FastAPI, owner_session: Session) -> None:
    sender = RecordingSender()
    cloud_app.state.otp_sender = sender
    await _student_with_phone(cloud_client)
    accepted = await cloud_client.post("/api/v1/auth/otp/request", json={"phone": "+91 98123 45678"})
    assert accepted.status_code == 202
    [(phone, code)] = sender.sent
    assert phone == PHONE and len(code) == 6 and code.isdigit()
    stored = owner_session.execute(text("SELECT code_hmac FROM otp_codes")).scalar_one()
    assert code not in stored

    tokens = await cloud_client.post("/api/v1/auth/otp/verify", json={"phone": PHONE, "code": code})
    assert tokens.status_code == 200, tokens.text
    assert tokens.json()["role"] == "student"
    reused = await cloud_client.post("/api/v1/auth/otp/verify", json={"phone": PHONE, "code": code})
    assert reused.status_code == 401


async def test_unknown_phone_gets_the_same_answer_and_no_sms(
    cloud_client: httpx.AsyncClient, cloud_app: FastAPI
) -> None:
    sender = RecordingSender()
    cloud_app.state.otp_sender = sender
    response = await cloud_client.post("/api/v1/auth/otp/request", json={"phone": "+919800000000"})
    assert response.status_code == 202 and sender.sent == []
    bad = await cloud_client.post("/api/v1/auth/otp/request", json={"phone": "not a phone"})
    assert bad.status_code == 422


async def test_five_wrong_codes_burn_it(cloud_client: httpx.AsyncClient, cloud_app: FastAPI) -> None:
    sender = RecordingSender()
    cloud_app.state.otp_sender = sender
    await _student_with_phone(cloud_client)
    await cloud_client.post("/api/v1/auth/otp/request", json={"phone": PHONE})
    [(_, code)] = sender.sent
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(5):
        response = await cloud_client.post("/api/v1/auth/otp/verify", json={"phone": PHONE, "code": wrong})
        assert response.status_code == 401
    right = await cloud_client.post("/api/v1/auth/otp/verify", json={"phone": PHONE, "code": code})
    assert right.status_code == 401
    malformed = await cloud_client.post("/api/v1/auth/otp/verify", json={"phone": PHONE, "code": "12ab56"})
    assert malformed.status_code == 422


async def test_expired_code_is_refused(
    cloud_client: httpx.AsyncClient, cloud_app: FastAPI, owner_session: Session
) -> None:
    sender = RecordingSender()
    cloud_app.state.otp_sender = sender
    await _student_with_phone(cloud_client)
    await cloud_client.post("/api/v1/auth/otp/request", json={"phone": PHONE})
    owner_session.execute(text("UPDATE otp_codes SET expires_at = now() - interval '1 second'"))
    owner_session.commit()
    [(_, code)] = sender.sent
    response = await cloud_client.post("/api/v1/auth/otp/verify", json={"phone": PHONE, "code": code})
    assert response.status_code == 401
