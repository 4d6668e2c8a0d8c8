"""App factory basics: health, metrics, the error envelope, security headers, body limit."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from cloud.app import close_app, create_app
from cloud.config import CloudSettings


def assert_envelope(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    return body["error"]


async def test_health_reports_postgres_and_redis(cloud_client: httpx.AsyncClient) -> None:
    response = await cloud_client.get("/health")
    assert response.status_code == 200
    assert response.json()["dependencies"] == {"postgres": {"status": "up"}, "redis": {"status": "up"}}


async def test_health_is_503_naming_the_dead_dependency(cloud_settings: CloudSettings) -> None:
    settings = cloud_settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    app = create_app(settings)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test"
        ) as client:
            response = await client.get("/health")
    finally:
        await close_app(app)
    assert response.status_code == 503
    deps = response.json()["dependencies"]
    assert deps["postgres"]["status"] == "up"
    assert deps["redis"]["status"] == "down"


async def test_metrics_count_requests_by_route_template(cloud_client: httpx.AsyncClient) -> None:
    await cloud_client.get("/health")
    await cloud_client.get("/no/such/thing")
    text = (await cloud_client.get("/metrics")).text
    assert 'studyspot_http_requests_total{method="GET",route="/health",status="200"} 1.0' in text
    assert 'route="unmatched",status="404"' in text
    assert "studyspot_http_request_duration_seconds_bucket" in text


async def test_unknown_path_and_wrong_method_use_the_envelope(cloud_client: httpx.AsyncClient) -> None:
    assert_envelope(await cloud_client.get("/api/v1/nothing"), 404, "not_found")
    assert_envelope(await cloud_client.delete("/health"), 405, "method_not_allowed")


@pytest.mark.parametrize(
    "content, content_type",
    [
        (b"{not json", "application/json"),
        (b"[]", "application/json"),
        (b'{"email": "x"}', "application/json"),
        (b"\xff\xfe", "application/json"),
        (b"email=a", "text/plain"),
    ],
)
async def test_bad_bodies_are_422_in_the_envelope(
    cloud_client: httpx.AsyncClient, content: bytes, content_type: str
) -> None:
    response = await cloud_client.post(
        "/api/v1/auth/login", content=content, headers={"content-type": content_type}
    )
    error = assert_envelope(response, 422, "validation_error")
    assert isinstance(error["details"], list) and error["details"]


async def test_unexpected_exception_is_500_without_leaking(cloud_settings: CloudSettings) -> None:
    app: FastAPI = create_app(cloud_settings)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret database password in message")

    try:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.get("/boom")
    finally:
        await close_app(app)
    error = assert_envelope(response, 500, "internal_error")
    assert "secret" not in response.text
    assert error["details"] is None


async def test_security_headers_are_set(cloud_client: httpx.AsyncClient) -> None:
    headers = (await cloud_client.get("/health")).headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-xss-protection"] == "1; mode=block"
    assert headers["strict-transport-security"].startswith("max-age=31536000")
    assert headers["content-security-policy"] == "default-src 'self'"


async def test_oversized_body_is_413(cloud_client: httpx.AsyncClient, cloud_settings: CloudSettings) -> None:
    payload = b'{"email": "' + b"a" * (cloud_settings.max_body_bytes + 10) + b'"}'
    response = await cloud_client.post(
        "/api/v1/auth/login", content=payload, headers={"content-type": "application/json"}
    )
    assert_envelope(response, 413, "payload_too_large")


async def test_streamed_oversized_body_is_413(
    cloud_client: httpx.AsyncClient, cloud_settings: CloudSettings
) -> None:
    async def chunks():
        for _ in range(cloud_settings.max_body_bytes // 65536 + 2):
            yield b"a" * 65536

    response = await cloud_client.post(
        "/api/v1/auth/login", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_envelope(response, 413, "payload_too_large")


async def test_cors_allowlist(cloud_settings: CloudSettings) -> None:
    settings = cloud_settings.model_copy(update={"cors_origins": ["https://app.studyspot.example"]})
    app = create_app(settings)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test"
        ) as client:
            allowed = await client.options(
                "/api/v1/users/me",
                headers={"Origin": "https://app.studyspot.example", "Access-Control-Request-Method": "GET"},
            )
            denied = await client.get("/health", headers={"Origin": "https://evil.example"})
    finally:
        await close_app(app)
    assert allowed.headers["access-control-allow-origin"] == "https://app.studyspot.example"
    assert "access-control-allow-origin" not in denied.headers


async def test_openapi_is_served(cloud_client: httpx.AsyncClient) -> None:
    response = await cloud_client.get("/openapi.json")
    assert response.status_code == 200
    assert "/api/v1/auth/login" in response.json()["paths"]
