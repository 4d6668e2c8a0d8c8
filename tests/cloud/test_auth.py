"""Registration, login, JWT (EdDSA + JWKS), refresh rotation and reuse detection, logout, profile."""

from __future__ import annotations

import base64
import json
import time

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from fastapi import FastAPI
from jwt.algorithms import OKPAlgorithm
from sqlalchemy import text
from sqlalchemy.orm import Session

from cloud.identity.tokens import rotate_signing_key

PASSWORD = "a long enough password"


async def register(client: httpx.AsyncClient, email: str = "student@example.com") -> httpx.Response:
    return await client.post(
        "/api/v1/auth/register", json={"email": email, "password": PASSWORD, "full_name": "Asha Rao"}
    )


async def login(client: httpx.AsyncClient, email: str = "student@example.com", password: str = PASSWORD):
    return await client.post("/api/v1/auth/login", json={"email": email, "password": password})


async def test_register_login_and_read_profile(cloud_client: httpx.AsyncClient) -> None:
    created = await register(cloud_client, "Student@Example.com")
    assert created.status_code == 201, created.text
    assert created.json()["email"] == "student@example.com"
    assert "password" not in created.text

    tokens = (await login(cloud_client, "STUDENT@example.com")).json()
    assert tokens["role"] == "student" and tokens["expires_in"] == 900
    me = await cloud_client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert me.status_code == 200
    assert me.json()["full_name"] == "Asha Rao"
    assert "write:bookings" in me.json()["permissions"]


async def test_password_is_stored_as_argon2id(
    cloud_client: httpx.AsyncClient, owner_session: Session
) -> None:
    await register(cloud_client)
    stored = owner_session.execute(text("SELECT password_hash FROM users")).scalar_one()
    assert stored.startswith("$argon2id$")


async def test_a_hash_made_with_other_argon2_parameters_is_upgraded_at_login(
    cloud_client: httpx.AsyncClient, owner_session: Session
) -> None:
    from argon2 import PasswordHasher

    await register(cloud_client)
    old = PasswordHasher(time_cost=3, memory_cost=2048, parallelism=2).hash(PASSWORD)
    owner_session.execute(text("UPDATE users SET password_hash = :old"), {"old": old})
    owner_session.commit()

    assert (await login(cloud_client)).status_code == 200
    upgraded = owner_session.execute(text("SELECT password_hash FROM users")).scalar_one()
    assert upgraded != old and "$m=1024,t=1,p=1$" in upgraded  # the test server's configured cost
    assert (await login(cloud_client)).status_code == 200
    assert (await login(cloud_client, password="wrong password")).status_code == 401


async def test_duplicate_email_is_409(cloud_client: httpx.AsyncClient) -> None:
    await register(cloud_client)
    response = await register(cloud_client, "STUDENT@example.com")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "email_taken"


@pytest.mark.parametrize(
    "body",
    [
        {"email": "not-an-email", "password": PASSWORD},
        {"email": "a@example.com", "password": "short"},
        {"email": "a@example.com", "password": PASSWORD, "role": "super_admin"},
        {"email": "a@example.com", "password": PASSWORD, "phone": "12"},
    ],
)
async def test_bad_registrations_are_rejected(cloud_client: httpx.AsyncClient, body: dict) -> None:
    response = await cloud_client.post("/api/v1/auth/register", json=body)
    assert response.status_code == 422
    assert response.json()["error"]["code"] in ("validation_error", "invalid_phone")


async def test_wrong_password_and_unknown_email_look_the_same(cloud_client: httpx.AsyncClient) -> None:
    await register(cloud_client)
    wrong = await login(cloud_client, password="not the password")
    unknown = await login(cloud_client, email="nobody@example.com")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()


async def test_access_token_claims_and_jwks(cloud_client: httpx.AsyncClient) -> None:
    await register(cloud_client)
    access = (await login(cloud_client)).json()["access_token"]
    jwks = (await cloud_client.get("/.well-known/jwks.json")).json()
    header = jwt.get_unverified_header(access)
    assert header["alg"] == "EdDSA"
    jwk = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    public_key = OKPAlgorithm.from_jwk(jwk)
    assert isinstance(public_key, Ed25519PublicKey)
    claims = jwt.decode(access, public_key, algorithms=["EdDSA"], audience="studyspot-api")
    assert claims["role"] == "student" and claims["tenant_id"] is None
    assert claims["exp"] - claims["iat"] == 900
    assert {"sub", "permissions", "iat", "exp"} <= set(claims)


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def _forged_tokens(client: httpx.AsyncClient) -> dict[str, str]:
    await register(client)
    good = (await login(client)).json()["access_token"]
    header, payload, signature = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    jwk = (await client.get("/.well-known/jwks.json")).json()["keys"][0]
    elevated = dict(claims, role="super_admin")
    other_key = Ed25519PrivateKey.generate()
    return {
        "garbage": "not.a.token",
        "alg_none": f"{_b64({'alg': 'none', 'typ': 'JWT', 'kid': jwk['kid']})}.{payload}.",
        "tampered_claims": f"{header}.{_b64(elevated)}.{signature}",
        "hs256_with_public_key": jwt.encode(
            claims, base64.urlsafe_b64decode(jwk["x"] + "=="), algorithm="HS256", headers={"kid": jwk["kid"]}
        ),
        "foreign_key": jwt.encode(claims, other_key, algorithm="EdDSA", headers={"kid": jwk["kid"]}),
        "unknown_kid": jwt.encode(claims, other_key, algorithm="EdDSA", headers={"kid": "ffffffffffffffff"}),
        "expired": jwt.encode(
            dict(claims, iat=int(time.time()) - 2000, exp=int(time.time()) - 1000),
            other_key,
            algorithm="EdDSA",
            headers={"kid": jwk["kid"]},
        ),
    }


async def test_forged_tokens_are_401(cloud_client: httpx.AsyncClient) -> None:
    for name, token in (await _forged_tokens(cloud_client)).items():
        response = await cloud_client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, name
        assert response.json()["error"]["code"] == "unauthorized", name
    missing = await cloud_client.get("/api/v1/users/me")
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"


async def test_refresh_rotates_and_reuse_revokes_the_family(cloud_client: httpx.AsyncClient) -> None:
    await register(cloud_client)
    first = (await login(cloud_client)).json()
    second = await cloud_client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200
    second_tokens = second.json()
    assert second_tokens["refresh_token"] != first["refresh_token"]

    reuse = await cloud_client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert reuse.status_code == 401
    assert reuse.json()["error"]["code"] == "refresh_token_reused"
    # the thief's use revoked the legitimate holder's newer token too
    after = await cloud_client.post(
        "/api/v1/auth/refresh", json={"refresh_token": second_tokens["refresh_token"]}
    )
    assert after.status_code == 401


async def test_logout_revokes_refresh(cloud_client: httpx.AsyncClient) -> None:
    await register(cloud_client)
    tokens = (await login(cloud_client)).json()
    assert (
        await cloud_client.post("/api/v1/auth/logout", json={"refresh_token": tokens["refresh_token"]})
    ).status_code == 204
    response = await cloud_client.post(
        "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_refresh_token"


async def test_key_rotation_keeps_old_tokens_valid(
    cloud_client: httpx.AsyncClient, cloud_app: FastAPI, owner_session: Session
) -> None:
    await register(cloud_client)
    old_access = (await login(cloud_client)).json()["access_token"]
    rotate_signing_key(owner_session, cloud_app.state.master_key)
    owner_session.commit()
    cloud_app.state.tokens.reload()
    new_access = (await login(cloud_client)).json()["access_token"]
    assert jwt.get_unverified_header(new_access)["kid"] != jwt.get_unverified_header(old_access)["kid"]
    assert len((await cloud_client.get("/.well-known/jwks.json")).json()["keys"]) == 2
    for token in (old_access, new_access):
        response = await cloud_client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200


async def test_patch_profile(cloud_client: httpx.AsyncClient) -> None:
    await register(cloud_client)
    access = (await login(cloud_client)).json()["access_token"]
    headers = {"Authorization": f"Bearer {access}"}
    response = await cloud_client.patch(
        "/api/v1/users/me", json={"full_name": "Asha R.", "phone": "+91 98765 43210"}, headers=headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["phone"] == "+919876543210"
    assert (await cloud_client.get("/api/v1/users/me", headers=headers)).json()["phone"] == "+919876543210"
    bad = await cloud_client.patch("/api/v1/users/me", json={"email": "x@example.com"}, headers=headers)
    assert bad.status_code == 422


async def test_phone_is_encrypted_at_rest(cloud_client: httpx.AsyncClient, owner_session: Session) -> None:
    await cloud_client.post(
        "/api/v1/auth/register",
        json={"email": "p@example.com", "password": PASSWORD, "phone": "+919876543210"},
    )
    row = owner_session.execute(text("SELECT phone_enc, phone_index, phone_last4 FROM users")).one()
    assert b"9876543210" not in bytes(row.phone_enc)
    assert "9876543210" not in row.phone_index
    assert row.phone_last4 == "3210"
