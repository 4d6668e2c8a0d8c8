"""Signed requests through a real httpx client into a real Starlette app (in-process ASGI and uvicorn)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import http_sfv
import httpx
import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from shared.passes import generate_signing_key
from shared.signing import (
    HttpxRequestSigner,
    SignatureRejected,
    SignatureRejectReason,
    VerifiedSignature,
    _parse_canonical,
    sign_request,
    verify_request,
    verify_starlette_request,
)

DEVICE_KEY_ID = "device-1"
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class NonceBook:
    """The simplest replay store: remembers every (key id, nonce) it has seen."""

    def __init__(self) -> None:
        self._seen: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def remember(self, key_id: str, nonce: str) -> bool:
        with self._lock:
            if (key_id, nonce) in self._seen:
                return False
            self._seen.add((key_id, nonce))
            return True


@pytest.fixture(scope="module")
def device_key() -> Ed25519PrivateKey:
    return generate_signing_key()


@pytest.fixture(scope="module")
def app(device_key: Ed25519PrivateKey) -> Starlette:
    keys: dict[str, Ed25519PublicKey] = {DEVICE_KEY_ID: device_key.public_key()}
    nonces = NonceBook()

    async def signed_endpoint(request: Request) -> JSONResponse:
        try:
            verified = await verify_starlette_request(
                request, resolve_key=keys.get, now=datetime.now(UTC), remember_nonce=nonces.remember
            )
        except SignatureRejected as rejected:
            return JSONResponse({"reason": rejected.reason.value, "detail": rejected.detail}, status_code=401)
        body = await request.body()
        return JSONResponse({"key_id": verified.key_id, "nonce": verified.nonce, "body": body.decode()})

    methods = ["GET", "POST", "PUT", "DELETE"]
    return Starlette(routes=[Route("/api/v1/{rest:path}", signed_endpoint, methods=methods)])


@pytest.fixture(scope="module")
def live_url(app: Starlette) -> Iterator[str]:
    """The same app behind a real uvicorn server on an ephemeral port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=5)
    sock.close()


@pytest.fixture(params=["asgi", "uvicorn"])
def transport_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def client_factory(transport_kind: str, app: Starlette, request: pytest.FixtureRequest):
    @asynccontextmanager
    async def open_client(auth: httpx.Auth | None = None) -> AsyncIterator[httpx.AsyncClient]:
        if transport_kind == "asgi":
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://cloud.test", auth=auth
            ) as client:
                yield client
        else:
            base_url = request.getfixturevalue("live_url")
            async with httpx.AsyncClient(base_url=base_url, auth=auth) as client:
                yield client

    return open_client


def signed_headers(
    key: Ed25519PrivateKey, method: str, url: str, body: bytes, key_id: str = DEVICE_KEY_ID, **kwargs: object
) -> dict[str, str]:
    return sign_request(method, url, {}, body, key_id=key_id, private_key=key, **kwargs)  # type: ignore[arg-type]


def reason(response: httpx.Response) -> str:
    assert response.status_code == 401, response.text
    return str(response.json()["reason"])


# --- round trips ------------------------------------------------------------------------------------


async def test_signed_post_round_trip(client_factory, device_key: Ed25519PrivateKey) -> None:
    async with client_factory(HttpxRequestSigner(DEVICE_KEY_ID, device_key)) as client:
        response = await client.post("/api/v1/sync/push", json={"events": [1, 2, 3]})
    assert response.status_code == 200, response.text
    assert response.json()["key_id"] == DEVICE_KEY_ID
    assert response.json()["body"] == '{"events":[1,2,3]}'


async def test_signed_get_with_encoded_path_and_query_round_trip(client_factory, device_key) -> None:
    async with client_factory(HttpxRequestSigner(DEVICE_KEY_ID, device_key)) as client:
        response = await client.get(
            "/api/v1/sync/pull%20all",
            params={"cursor": "a/b+c=d", "since": "2026-11-24T09:30:00+05:30", "empty": ""},
        )
    assert response.status_code == 200, response.text


async def test_every_request_gets_a_fresh_nonce(client_factory, device_key) -> None:
    async with client_factory(HttpxRequestSigner(DEVICE_KEY_ID, device_key)) as client:
        first = await client.put("/api/v1/sync/ack", content=b"same")
        second = await client.put("/api/v1/sync/ack", content=b"same")
    assert first.status_code == second.status_code == 200
    assert first.json()["nonce"] != second.json()["nonce"]


def test_sync_httpx_client_round_trip(live_url: str, device_key: Ed25519PrivateKey) -> None:
    with httpx.Client(base_url=live_url, auth=HttpxRequestSigner(DEVICE_KEY_ID, device_key)) as client:
        response = client.delete("/api/v1/sync/outbox/7?force=1")
    assert response.status_code == 200, response.text


async def test_created_inside_the_window_is_accepted(client_factory, device_key) -> None:
    created = datetime.now(UTC) - timedelta(seconds=200)
    headers = signed_headers(device_key, "POST", "/api/v1/sync/push", b"{}", created=created)
    async with client_factory() as client:
        response = await client.post("/api/v1/sync/push", content=b"{}", headers=headers)
    assert response.status_code == 200, response.text


# --- rejections, each with its reason -------------------------------------------------------------


async def test_changed_body_is_digest_mismatch(client_factory, device_key) -> None:
    headers = signed_headers(device_key, "POST", "/api/v1/sync/push", b'{"amount": 100}')
    async with client_factory() as client:
        response = await client.post("/api/v1/sync/push", content=b'{"amount": 900}', headers=headers)
    assert reason(response) == SignatureRejectReason.DIGEST_MISMATCH


async def test_changed_body_with_recomputed_digest_is_bad_signature(client_factory, device_key) -> None:
    headers = signed_headers(device_key, "POST", "/api/v1/sync/push", b'{"amount": 100}')
    other = signed_headers(device_key, "POST", "/api/v1/sync/push", b'{"amount": 900}')
    headers["Content-Digest"] = other["Content-Digest"]
    async with client_factory() as client:
        response = await client.post("/api/v1/sync/push", content=b'{"amount": 900}', headers=headers)
    assert reason(response) == SignatureRejectReason.BAD_SIGNATURE


@pytest.mark.parametrize(
    ("signed_url", "sent_url"),
    [
        ("/api/v1/sync/push", "/api/v1/sync/pull"),  # path
        ("/api/v1/sync/pull?cursor=10", "/api/v1/sync/pull?cursor=99"),  # query value
        ("/api/v1/sync/pull?cursor=10", "/api/v1/sync/pull?cursor=10&full=1"),  # added parameter
        ("/api/v1/sync/pull?cursor=10", "/api/v1/sync/pull"),  # dropped query
    ],
)
async def test_changed_path_or_query_is_bad_signature(
    client_factory, device_key, signed_url, sent_url
) -> None:
    headers = signed_headers(device_key, "GET", signed_url, b"")
    async with client_factory() as client:
        response = await client.get(sent_url, headers=headers)
    assert reason(response) == SignatureRejectReason.BAD_SIGNATURE


async def test_changed_method_is_bad_signature(client_factory, device_key) -> None:
    headers = signed_headers(device_key, "GET", "/api/v1/sync/outbox", b"")
    async with client_factory() as client:
        response = await client.delete("/api/v1/sync/outbox", headers=headers)
    assert reason(response) == SignatureRejectReason.BAD_SIGNATURE


@pytest.mark.parametrize(
    ("offset", "expected"),
    [
        (timedelta(minutes=-10), SignatureRejectReason.STALE),
        (timedelta(minutes=10), SignatureRejectReason.FUTURE),
    ],
)
async def test_created_outside_the_window(client_factory, device_key, offset, expected) -> None:
    headers = signed_headers(
        device_key, "POST", "/api/v1/sync/push", b"{}", created=datetime.now(UTC) + offset
    )
    async with client_factory() as client:
        response = await client.post("/api/v1/sync/push", content=b"{}", headers=headers)
    assert reason(response) == expected


async def test_unknown_key(client_factory) -> None:
    stranger = generate_signing_key()
    async with client_factory(HttpxRequestSigner("device-unknown", stranger)) as client:
        response = await client.post("/api/v1/sync/push", json={})
    assert reason(response) == SignatureRejectReason.UNKNOWN_KEY


async def test_known_key_id_signed_by_another_key_is_bad_signature(client_factory) -> None:
    async with client_factory(HttpxRequestSigner(DEVICE_KEY_ID, generate_signing_key())) as client:
        response = await client.post("/api/v1/sync/push", json={})
    assert reason(response) == SignatureRejectReason.BAD_SIGNATURE


async def test_replayed_request(client_factory, device_key) -> None:
    headers = signed_headers(device_key, "POST", "/api/v1/sync/push", b"[1]")
    async with client_factory() as client:
        first = await client.post("/api/v1/sync/push", content=b"[1]", headers=headers)
        replay = await client.post("/api/v1/sync/push", content=b"[1]", headers=headers)
    assert first.status_code == 200, first.text
    assert reason(replay) == SignatureRejectReason.REPLAYED


@pytest.mark.parametrize("dropped", [None, "Signature", "Signature-Input", "Content-Digest"])
async def test_missing_headers(client_factory, device_key, dropped: str | None) -> None:
    headers = signed_headers(device_key, "POST", "/api/v1/sync/push", b"{}")
    if dropped is None:
        headers = {}
    else:
        del headers[dropped]
    async with client_factory() as client:
        response = await client.post("/api/v1/sync/push", content=b"{}", headers=headers)
    assert reason(response) == SignatureRejectReason.MISSING


GOOD_PARAMS = 'created={created};keyid="device-1";nonce="n1";alg="ed25519"'
COVERED = '("@method" "@path" "@query" "content-digest")'
GARBAGE_HEADERS = [
    {"Signature-Input": "garbage((", "Signature": "studyspot=:AAAA:"},
    {"Signature-Input": "studyspot=" + COVERED + ";" + GOOD_PARAMS, "Signature": "studyspot=:not base64:"},
    {
        "Signature-Input": "studyspot=" + COVERED + ";" + GOOD_PARAMS,
        "Signature": "studyspot=:AAAA:",
    },  # 3 bytes
    {"Signature-Input": "studyspot=" + COVERED + ";" + GOOD_PARAMS, "Signature": 'studyspot="text"'},
    {"Signature-Input": 'studyspot=("@method");' + GOOD_PARAMS},  # too little covered
    {"Signature-Input": 'studyspot=("@method" "@path" "@query" "content-digest" "date");' + GOOD_PARAMS},
    {"Signature-Input": "studyspot=" + COVERED + ";" + GOOD_PARAMS.replace("ed25519", "hmac-sha256")},
    {
        "Signature-Input": "studyspot="
        + COVERED
        + ';created="yesterday";keyid="device-1";nonce="n";alg="ed25519"'
    },
    {"Signature-Input": "studyspot=" + COVERED + ';keyid="device-1";nonce="n";alg="ed25519"'},  # no created
    {"Signature-Input": "studyspot=" + COVERED + ';created=1;keyid="device-1";alg="ed25519"'},  # no nonce
    {"Signature-Input": "studyspot=" + COVERED + ";" + GOOD_PARAMS + ";expires=99"},  # extra parameter
    {
        "Signature-Input": "studyspot="
        + COVERED
        + ';created=999999999999999;keyid="k";nonce="n";alg="ed25519"'
    },
    {"Signature-Input": "other=" + COVERED + ";" + GOOD_PARAMS},  # wrong label
    {
        "Signature-Input": "studyspot="
        + COVERED
        + ";"
        + GOOD_PARAMS
        + ", second="
        + COVERED
        + ";"
        + GOOD_PARAMS
    },
    {"Signature-Input": "studyspot=" + COVERED + ";" + GOOD_PARAMS + "x" * 5000},  # oversized
    {"Signature-Input": "studyspot=@method"},
]


@pytest.mark.parametrize("replacement", GARBAGE_HEADERS)
async def test_garbage_headers_are_malformed(client_factory, device_key, replacement: dict[str, str]) -> None:
    headers = signed_headers(device_key, "POST", "/api/v1/sync/push", b"{}")
    created = str(int(time.time()))
    headers.update({name: value.replace("{created}", created) for name, value in replacement.items()})
    async with client_factory() as client:
        response = await client.post("/api/v1/sync/push", content=b"{}", headers=headers)
    assert reason(response) == SignatureRejectReason.MALFORMED


# --- verify_request directly ---------------------------------------------------------------------


def never_seen(key_id: str, nonce: str) -> bool:
    return True


def check(
    headers,
    key: Ed25519PrivateKey,
    *,
    url: str = "/api/v1/sync/push",
    body: bytes = b"{}",
    method: str = "POST",
) -> VerifiedSignature:
    return verify_request(
        method,
        url,
        headers,
        body,
        resolve_key=lambda key_id: key.public_key() if key_id == DEVICE_KEY_ID else None,
        now=datetime.now(UTC),
        remember_nonce=never_seen,
    )


def test_relative_and_absolute_urls_sign_the_same(device_key: Ed25519PrivateKey) -> None:
    headers = signed_headers(device_key, "POST", "https://cloud.example/api/v1/sync/push?x=1", b"{}")
    assert check(headers, device_key, url="/api/v1/sync/push?x=1").key_id == DEVICE_KEY_ID
    assert check(headers, device_key, url="http://127.0.0.1:9/api/v1/sync/push?x=1").key_id == DEVICE_KEY_ID


def test_header_names_are_case_insensitive_and_pairs_are_accepted(device_key: Ed25519PrivateKey) -> None:
    headers = signed_headers(device_key, "POST", "/api/v1/sync/push", b"{}", nonce="fixed-nonce")
    lowered = {name.lower(): value for name, value in headers.items()}
    assert check(lowered, device_key).nonce == "fixed-nonce"
    assert check(list(headers.items()), device_key).nonce == "fixed-nonce"


def test_verified_signature_reports_created_and_nonce(device_key: Ed25519PrivateKey) -> None:
    created = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=5)
    headers = signed_headers(device_key, "POST", "/api/v1/sync/push", b"{}", created=created, nonce="abc")
    assert check(headers, device_key) == VerifiedSignature(key_id=DEVICE_KEY_ID, created=created, nonce="abc")


def test_window_is_configurable(device_key: Ed25519PrivateKey) -> None:
    now = datetime.now(UTC)
    headers = signed_headers(
        device_key, "POST", "/api/v1/sync/push", b"{}", created=now - timedelta(seconds=30)
    )
    with pytest.raises(SignatureRejected) as caught:
        verify_request(
            "POST",
            "/api/v1/sync/push",
            headers,
            b"{}",
            resolve_key=lambda _: device_key.public_key(),
            now=now,
            max_skew=timedelta(seconds=10),
            remember_nonce=never_seen,
        )
    assert caught.value.reason == SignatureRejectReason.STALE


def test_non_ascii_header_is_malformed(device_key: Ed25519PrivateKey) -> None:
    headers = signed_headers(device_key, "POST", "/api/v1/sync/push", b"{}")
    headers["Signature"] = "studyspot=:ÄÖ:"
    with pytest.raises(SignatureRejected) as caught:
        check(headers, device_key)
    assert caught.value.reason == SignatureRejectReason.MALFORMED


def test_naive_times_are_programming_errors(device_key: Ed25519PrivateKey) -> None:
    with pytest.raises(ValueError):
        signed_headers(device_key, "POST", "/x", b"", created=datetime(2026, 11, 24))
    headers = signed_headers(device_key, "POST", "/x", b"")
    with pytest.raises(ValueError):
        verify_request(
            "POST",
            "/x",
            headers,
            b"",
            resolve_key=lambda _: None,
            now=datetime(2026, 11, 24),
            remember_nonce=never_seen,
        )


# --- fuzz: garbage never raises anything but SignatureRejected -----------------------------------

header_names = st.sampled_from(["Signature", "Signature-Input", "Content-Digest", "X-Other"])


@FUZZ
@given(
    headers=st.dictionaries(header_names, st.text(max_size=300), max_size=4),
    url=st.text(max_size=80),
    method=st.text(max_size=10),
    body=st.binary(max_size=64),
)
def test_random_headers_are_rejected(
    device_key, headers: dict[str, str], url: str, method: str, body: bytes
) -> None:
    with pytest.raises(SignatureRejected) as caught:
        check(headers, device_key, url=url, method=method, body=body)
    assert caught.value.reason in SignatureRejectReason


def same_structure(original: str, mutated: str) -> bool:
    """Whether two header values parse to the same structured field (e.g. two spellings of one base64)."""
    try:
        before, after = http_sfv.Dictionary(), http_sfv.Dictionary()
        before.parse(original.encode("ascii"))
        after.parse(mutated.encode("ascii"))
    except Exception:
        return False
    return str(before) == str(after)


@FUZZ
@given(data=st.data())
def test_one_changed_character_in_any_signature_header_is_rejected(device_key, data: st.DataObject) -> None:
    headers = signed_headers(device_key, "POST", "/api/v1/sync/push", b"{}")
    name = data.draw(st.sampled_from(sorted(headers)))
    value = headers[name]
    position = data.draw(st.integers(min_value=0, max_value=len(value) - 1))
    replacement = data.draw(st.characters(codec="latin-1").filter(lambda c: c != value[position]))
    mutated = value[:position] + replacement + value[position + 1 :]
    try:
        check({**headers, name: mutated}, device_key)
    except SignatureRejected as rejected:
        assert rejected.reason in SignatureRejectReason
    else:
        assert same_structure(value, mutated), f"accepted a changed {name}: {mutated!r}"


# --- the canonical spelling's own parser against the library's verifier ----------------------------

URL_CHARACTERS = "abcXYZ019-._~!$&'()*+,;=:@/?%#[] \"<>^`{|}\\\t\x7f"
url_paths = st.text(alphabet=URL_CHARACTERS, max_size=40).map(lambda tail: "/api/v1/" + tail)


def outcome(headers: dict[str, str], key: Ed25519PrivateKey, method: str, url: str, body: bytes) -> str:
    try:
        check(headers, key, url=url, body=body, method=method)
    except SignatureRejected as rejected:
        return rejected.reason.value
    return "accepted"


def test_signed_headers_take_the_canonical_path(device_key: Ed25519PrivateKey) -> None:
    headers = signed_headers(device_key, "GET", "/api/v1/fleet/sync/pull?cursor=a%2Fb", b"")
    assert _parse_canonical({name.lower(): value for name, value in headers.items()}) is not None
    padded = headers["Signature-Input"].replace(";created=", ";created=0")  # same integer
    for name, value in (("Signature", " " + headers["Signature"]), ("Signature-Input", padded)):
        respelled = {**headers, name: value}  # the same field, not in the signer's spelling
        assert _parse_canonical({key.lower(): text for key, text in respelled.items()}) is None
        assert (
            outcome(respelled, device_key, "GET", "/api/v1/fleet/sync/pull?cursor=a%2Fb", b"") == "accepted"
        )


@FUZZ
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "get"]),
    signed_url=url_paths,
    verified_url=st.one_of(st.none(), url_paths),
    body=st.binary(max_size=32),
    verified_body=st.one_of(st.none(), st.binary(max_size=32)),
)
def test_canonical_path_agrees_with_the_library(
    device_key,
    method: str,
    signed_url: str,
    verified_url: str | None,
    body: bytes,
    verified_body: bytes | None,
) -> None:
    """A Signature header with a leading space is the same field but not the canonical spelling, so
    it is verified by the library's HTTPMessageVerifier: both paths accept and reject alike."""
    try:
        headers = signed_headers(device_key, method.upper(), signed_url, body)
    except ValueError:
        return  # a URL the signer cannot represent
    url = signed_url if verified_url is None else verified_url
    body = body if verified_body is None else verified_body
    general = {**headers, "Signature": " " + headers["Signature"]}
    assert outcome(headers, device_key, method, url, body) == outcome(general, device_key, method, url, body)
