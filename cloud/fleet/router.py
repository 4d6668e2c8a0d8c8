"""Fleet routes: owners manage devices; edges enrol with a token, then sign every request."""

from __future__ import annotations

import gzip
import json
import uuid
import zlib
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from cloud.db import platform_scope, tenant_scope
from cloud.deps import Principal, RequestContext, get_request_context, get_session, require_role
from cloud.errors import ApiError
from cloud.fleet import booking_bridge, service
from cloud.fleet.auth import SERVER_TIME_HEADER, SignedDevice, authenticate, signed_body, signed_device
from cloud.fleet.hooks import run_after_push
from cloud.fleet.pull import build_pull
from cloud.fleet.push import EdgeReport, apply_push, record_contact
from cloud.fleet.schemas import (
    CommandCreate,
    CommandOut,
    DeviceCreate,
    DeviceOut,
    EnrollmentToken,
    EnrollRequest,
    EnrollResponse,
    KeyRotateRequest,
    KeyRotateResponse,
)
from cloud.identity.roles import Role
from cloud.openapi import errors
from shared.sync import PullResponse, PushResult

MAX_INFLATED_BYTES = 16 * 1024 * 1024
GZIP_ABOVE_BYTES = 1024
AGENT_VERSION_HEADER = "X-Studyspot-Agent-Version"
QUEUE_DEPTH_HEADER = "X-Studyspot-Queue-Depth"
DEAD_LETTERS_HEADER = "X-Studyspot-Dead-Letters"

router = APIRouter(prefix="/api/v1/fleet", tags=["fleet"])
booking_bridge.install()

owner_only = require_role(Role.LIBRARY_OWNER)
owner_or_admin = require_role(Role.LIBRARY_OWNER, Role.SUPER_ADMIN)


def _owner_session(principal: Principal, session: Session) -> Session:
    if principal.tenant_id is None:
        raise ApiError(403, "forbidden", "pick a tenant first")
    tenant_scope(session, principal.tenant_id, principal.user_id)
    return session


# --- owners ----------------------------------------------------------------------------------------


@router.post("/devices", status_code=201, response_model=EnrollmentToken)
def create_device(
    body: DeviceCreate,
    principal: Principal = Depends(owner_only),
    session: Session = Depends(get_session),
    context: RequestContext = Depends(get_request_context),
) -> EnrollmentToken:
    _owner_session(principal, session)
    assert principal.tenant_id is not None
    device, token = service.create_device(
        session, tenant_id=principal.tenant_id, library_id=body.library_id, name=body.name,
        config=body.config, actor_id=principal.user_id, ip=context.ip,
    )  # fmt: skip
    session.commit()
    assert device.enroll_expires_at is not None
    return EnrollmentToken(
        device=service.device_out(device), enrollment_token=token, expires_at=device.enroll_expires_at
    )


@router.get("/devices", response_model=list[DeviceOut])
def list_devices(
    principal: Principal = Depends(owner_or_admin), session: Session = Depends(get_session)
) -> Any:
    if principal.role is Role.SUPER_ADMIN:
        platform_scope(session, principal.user_id)
    else:
        _owner_session(principal, session)
    return service.list_devices(session)


@router.post("/devices/{device_id}/enrollment-token", response_model=EnrollmentToken)
def reissue_token(
    device_id: uuid.UUID,
    principal: Principal = Depends(owner_only),
    session: Session = Depends(get_session),
    context: RequestContext = Depends(get_request_context),
) -> EnrollmentToken:
    _owner_session(principal, session)
    token = service.reissue_token(session, device_id, actor_id=principal.user_id, ip=context.ip)
    device = service.get_device(session, device_id)
    session.commit()
    assert device.enroll_expires_at is not None
    return EnrollmentToken(
        device=service.device_out(device), enrollment_token=token, expires_at=device.enroll_expires_at
    )


@router.post("/devices/{device_id}/revoke", response_model=DeviceOut)
def revoke_device(
    device_id: uuid.UUID,
    principal: Principal = Depends(owner_only),
    session: Session = Depends(get_session),
    context: RequestContext = Depends(get_request_context),
) -> DeviceOut:
    _owner_session(principal, session)
    device = service.revoke_device(session, device_id, actor_id=principal.user_id, ip=context.ip)
    session.commit()
    return service.device_out(device)


@router.post("/devices/{device_id}/commands", status_code=201, response_model=CommandOut)
def queue_command(
    device_id: uuid.UUID,
    body: CommandCreate,
    principal: Principal = Depends(owner_only),
    session: Session = Depends(get_session),
    context: RequestContext = Depends(get_request_context),
) -> CommandOut:
    _owner_session(principal, session)
    command = service.queue_command(
        session, device_id, body.kind, body.args, actor_id=principal.user_id, ip=context.ip
    )
    session.commit()
    return service.command_out(command)


@router.get("/devices/{device_id}/commands", response_model=list[CommandOut])
def list_commands(
    device_id: uuid.UUID, principal: Principal = Depends(owner_only), session: Session = Depends(get_session)
) -> list[CommandOut]:
    _owner_session(principal, session)
    return [service.command_out(command) for command in service.list_commands(session, device_id)]


# --- edges -----------------------------------------------------------------------------------------


@router.post("/enroll", response_model=EnrollResponse, responses=errors(401, 403, 404))
def enroll(
    body: EnrollRequest,
    session: Session = Depends(get_session),
    context: RequestContext = Depends(get_request_context),
) -> EnrollResponse:
    platform_scope(session)
    result = service.enroll(
        session, token=body.token, public_key=body.public_key, agent_version=body.agent_version, ip=context.ip
    )
    session.commit()
    return result


def _device_session(request: Request, signed: SignedDevice) -> Session:
    session: Session = request.app.state.session_factory()
    tenant_scope(session, signed.key.tenant_id, None)
    return session


@router.post("/keys/rotate", response_model=KeyRotateResponse, responses=errors(401, 403))
def rotate_key(
    body: KeyRotateRequest, request: Request, signed: SignedDevice = Depends(signed_device)
) -> KeyRotateResponse:
    """Register the device's next key; it replaces the signing key on its first use."""
    with _device_session(request, signed) as session:
        key_id = service.register_rotation_key(session, signed.key.device_id, body.public_key)
        session.commit()
    return KeyRotateResponse(key_id=key_id, status="pending")


def _header_int(request: Request, name: str) -> int | None:
    value = request.headers.get(name)
    try:
        return max(0, int(value)) if value is not None else None
    except ValueError:
        return None


def _report(request: Request) -> EdgeReport:
    return EdgeReport(
        agent_version=request.headers.get(AGENT_VERSION_HEADER),
        queue_depth=_header_int(request, QUEUE_DEPTH_HEADER),
        dead_letters=_header_int(request, DEAD_LETTERS_HEADER),
    )


def _inflate(body: bytes, encoding: str) -> bytes:
    if encoding in ("", "identity"):
        return body
    if encoding != "gzip":
        raise ApiError(415, "unsupported_media_type", f"Content-Encoding {encoding!r} is not supported")
    inflater = zlib.decompressobj(wbits=31)
    try:
        data = inflater.decompress(body, MAX_INFLATED_BYTES)
    except zlib.error:
        raise ApiError(400, "bad_request", "the gzip body is corrupt") from None
    if inflater.unconsumed_tail:
        raise ApiError(413, "payload_too_large", "the batch is too large once decompressed")
    return data


def _server_time(response: Response) -> None:
    response.headers[SERVER_TIME_HEADER] = datetime.now(UTC).isoformat()


def _not_a_json_number(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_batch(body: bytes, content_encoding: str) -> Any:
    """The pushed body as JSON; NaN and Infinity (which Python's parser accepts) are refused too:
    PostgreSQL's jsonb has no such numbers."""
    data = _inflate(body, content_encoding.strip().lower())
    try:
        return json.loads(data, parse_constant=_not_a_json_number)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "bad_request", "the body is not JSON") from None


@router.post("/sync/push", response_model=PushResult, responses=errors(401, 403, 415))
async def push(request: Request, response: Response) -> PushResult:
    """Apply a batch of edge events; each at most once; one result per event."""
    signed_request = await signed_body(request)
    report = _report(request)

    def apply() -> tuple[SignedDevice, PushResult]:
        with request.app.state.session_factory() as session:
            signed = authenticate(request, session, signed_request)
            raw = parse_batch(signed_request.body, request.headers.get("content-encoding", ""))
            result = apply_push(session, signed.key, raw, now=datetime.now(UTC), report=report)
            session.commit()
            return signed, result

    signed, result = await run_in_threadpool(apply)
    await run_after_push(request, signed.key)
    _server_time(response)
    return result


def _json(model: PullResponse, request: Request) -> Response:
    """The page as JSON, gzipped when the edge accepts it (pages of passes compress ~10x)."""
    body = model.model_dump_json().encode()
    headers = {SERVER_TIME_HEADER: datetime.now(UTC).isoformat(), "Vary": "Accept-Encoding"}
    if len(body) > GZIP_ABOVE_BYTES and "gzip" in request.headers.get("accept-encoding", "").lower():
        body = gzip.compress(body, compresslevel=6)
        headers["Content-Encoding"] = "gzip"
    return Response(body, media_type="application/json", headers=headers)


@router.get("/sync/pull", response_model=PullResponse, responses=errors(401, 403))
async def pull(request: Request, cursor: str | None = Query(default=None, max_length=2000)) -> Response:
    """A page of what the door needs: passes, revocations, staff, keys, config, commands."""
    signed_request = await signed_body(request)

    def page() -> PullResponse:
        with request.app.state.session_factory() as session:
            signed = authenticate(request, session, signed_request)
            now = datetime.now(UTC)
            result = build_pull(session, signed.key, cursor, now=now)
            record_contact(session, signed.key, _report(request), now=now, edge_clock=signed.created)
            session.commit()
            return result

    return _json(await run_in_threadpool(page), request)
