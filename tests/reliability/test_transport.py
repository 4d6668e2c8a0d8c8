"""Transport security: the seed's security headers on every response of a real server, CORS for
configured origins only, and the edge broker's MQTT TLS listener checked with `mosquitto_pub --cafile`."""

from __future__ import annotations

import asyncio
import re
import uuid
from pathlib import Path

import aiomqtt
import httpx
import pytest

from edge.broker import BrokerListen, CredentialAuthority, EmbeddedBroker
from edge.devices import enroll_device
from edge.store import Store
from tests.edge.conftest import AGENT_PASSWORD, free_port
from tests.edge.test_broker import _self_signed
from tests.reliability.conftest import LiveApi
from tests.reliability.report import Tally

AGENT = "studyspot-agent"
# the seed's list (product card, "API Security")
SEED_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "x-xss-protection": "1; mode=block",
    "strict-transport-security": "max-age=31536000; includeSubDomains",
    "content-security-policy": "default-src 'self'",
}
ALLOWED_ORIGIN = "https://app.studyspot.example"  # configured in tests/reliability/conftest.py


def every_get_path(document: dict[str, object]) -> list[str]:
    paths = document["paths"]
    assert isinstance(paths, dict)
    return [re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path) for path, ops in paths.items() if "get" in ops]


def missing_headers(response: httpx.Response) -> dict[str, str | None]:
    expected = dict(SEED_HEADERS)
    if response.request.url.path.startswith(("/docs", "/redoc")):
        expected.pop("content-security-policy")  # Swagger UI loads its assets from a CDN
    return {
        name: response.headers.get(name)
        for name, value in expected.items()
        if response.headers.get(name) != value
    }


async def test_seed_security_headers_on_every_response(live_api: LiveApi, tally: Tally) -> None:
    async with httpx.AsyncClient(base_url=live_api.url, timeout=30) as client:
        document = (await client.get("/openapi.json")).json()
        requests = [client.build_request("GET", path) for path in every_get_path(document)]
        for role in ("student", "library_owner"):
            headers = live_api.headers[role]
            requests += [
                client.build_request("GET", path, headers=headers) for path in every_get_path(document)
            ]
        requests += [
            client.build_request("GET", "/no/such/route"),
            client.build_request("DELETE", "/health"),  # 405
            client.build_request("POST", "/api/v1/auth/login", content=b"{not json"),  # 422
            client.build_request("POST", "/api/v1/auth/login", content=b"x" * 2_000_000),  # 413
            client.build_request("GET", "/docs"),
        ]
        responses = [await client.send(request) for request in requests]
    tally.add("attacks", len(responses))
    statuses = {response.status_code for response in responses}
    assert {200, 401, 404, 405, 413, 422} <= statuses
    assert all(response.status_code < 500 for response in responses)
    missing = {
        f"{r.request.method} {r.request.url.path}": missing_headers(r)
        for r in responses
        if missing_headers(r)
    }
    assert missing == {}


async def test_cors_allows_configured_origins_only(live_api: LiveApi, tally: Tally) -> None:
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
    async with httpx.AsyncClient(base_url=live_api.url, timeout=30) as client:
        allowed = await client.options("/api/v1/bookings", headers={"Origin": ALLOWED_ORIGIN} | preflight)
        denied = await client.options(
            "/api/v1/bookings", headers={"Origin": "https://evil.example"} | preflight
        )
        simple_allowed = await client.get("/health", headers={"Origin": ALLOWED_ORIGIN})
        simple_denied = await client.get("/health", headers={"Origin": "https://evil.example"})
        lookalike = await client.options(
            "/api/v1/bookings", headers={"Origin": "https://app.studyspot.example.evil.example"} | preflight
        )
    tally.add("attacks", 3)
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert simple_allowed.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    for refused in (denied, lookalike):
        assert refused.status_code == 400
        assert "access-control-allow-origin" not in refused.headers
    assert "access-control-allow-origin" not in simple_denied.headers


@pytest.fixture
async def tls_broker(tmp_path: Path):
    certfile, keyfile = _self_signed(tmp_path)
    store = Store(tmp_path / "edge.sqlite3")
    door = enroll_device(store, device_id="door-a", kind="door", topic_prefix="lib/door-a")
    embedded = EmbeddedBroker(
        BrokerListen("127.0.0.1", 0, free_port(), certfile, keyfile),
        CredentialAuthority(store, AGENT, AGENT_PASSWORD),
    )
    await embedded.start()
    yield embedded, door, certfile
    await embedded.stop()
    store.close()


async def mosquitto_pub(port: int, username: str, password: str, message: str, *tls: str) -> int:
    process = await asyncio.create_subprocess_exec(
        "mosquitto_pub", "-h", "localhost", "-p", str(port), "-u", username, "-P", password,
        "-q", "1", "-t", "lib/door-a/text_sensor/qr_scan/state", "-m", message, *tls,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    return await process.wait()


async def test_mqtt_tls_listener_verified_with_mosquitto_pub_cafile(
    tls_broker, tmp_path: Path, tally: Tally
) -> None:
    embedded, door, certfile = tls_broker
    tls_port = embedded.listen.tls_port
    assert tls_port is not None
    (tmp_path / "other").mkdir()
    stranger_ca, _ = _self_signed(tmp_path / "other")
    user, password = door.record.username, door.password
    async with aiomqtt.Client(
        "127.0.0.1", embedded.bound_port(), username=AGENT, password=AGENT_PASSWORD
    ) as agent:
        await agent.subscribe("lib/door-a/#", qos=1)
        assert await mosquitto_pub(tls_port, user, password, "over-tls", "--cafile", str(certfile)) == 0
        async with asyncio.timeout(10):
            message = await anext(aiter(agent.messages))
        refused = [
            await mosquitto_pub(tls_port, user, password, "wrong-ca", "--cafile", str(stranger_ca)),
            await mosquitto_pub(tls_port, user, password, "plain-to-tls"),  # no TLS on the TLS port
            await mosquitto_pub(tls_port, user, "wrong-password", "bad-creds", "--cafile", str(certfile)),
        ]
    tally.add("attacks", 3)
    assert message.payload == b"over-tls"
    assert all(code != 0 for code in refused), refused
