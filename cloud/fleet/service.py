"""Devices: creation with a one-time enrolment token, enrolment, keys, revocation, commands, fleet view.

Services take a session whose scope the caller set (tenant for owners, platform for enrolment and
the signed-request key lookup, which happen before the tenant is known).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloud.audit import service as audit
from cloud.db import row_tenant_scope_sql, tenant_scope_applied
from cloud.errors import ApiError
from cloud.fleet.models import EdgeCommand, EdgeDevice, EdgeDeviceKey
from cloud.fleet.schemas import CommandOut, DeviceOut, EnrollResponse
from cloud.models_common import utcnow
from cloud.tenancy.models import Library
from cloud.tenancy.passkeys import pass_public_keys_text
from shared.passes import public_key_from_text

ENROLL_TOKEN_TTL = dt.timedelta(hours=24)
ONLINE_WITHIN = dt.timedelta(seconds=90)  # three missed 30 s syncs
SKEW_FLAG_SECONDS = 30.0


@dataclass(frozen=True)
class DeviceKey:
    """A key the signed-request check may accept, with its device."""

    key_id: str
    public_key: str
    status: str
    device_id: uuid.UUID
    tenant_id: uuid.UUID
    library_id: uuid.UUID


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_key_id() -> str:
    return f"dk_{secrets.token_hex(8)}"


def _validated_public_key(text: str) -> str:
    try:
        public_key_from_text(text)
    except Exception as exc:  # any decoding problem is the caller's bad input
        raise ApiError(422, "invalid_public_key", "public_key is not a base64url Ed25519 key") from exc
    return text


# --- devices and enrolment tokens ------------------------------------------------------------------


def _issue_token(device: EdgeDevice) -> str:
    token = secrets.token_urlsafe(32)
    device.enroll_token_hash = hash_token(token)
    device.enroll_expires_at = utcnow() + ENROLL_TOKEN_TTL
    return token


def create_device(
    session: Session,
    *,
    tenant_id: uuid.UUID,
    library_id: uuid.UUID,
    name: str,
    config: dict[str, Any],
    actor_id: uuid.UUID,
    ip: str,
) -> tuple[EdgeDevice, str]:
    library = session.get(Library, library_id)
    if library is None or library.tenant_id != tenant_id:
        raise ApiError(404, "not_found", "library not found in your tenant")
    device = EdgeDevice(
        tenant_id=tenant_id, library_id=library_id, name=name.strip(), config=config, created_by=actor_id
    )
    token = _issue_token(device)
    session.add(device)
    session.flush()
    audit.record(
        session, "fleet.device.create", tenant_id=tenant_id, actor_id=actor_id,
        target=f"edge_device:{device.id}", ip=ip, detail={"library_id": str(library_id), "name": name},
    )  # fmt: skip
    return device, token


def get_device(session: Session, device_id: uuid.UUID) -> EdgeDevice:
    device = session.get(EdgeDevice, device_id)
    if device is None:
        raise ApiError(404, "not_found", "device not found")
    return device


def reissue_token(session: Session, device_id: uuid.UUID, *, actor_id: uuid.UUID, ip: str) -> str:
    """A new one-time token to (re-)enrol the device, e.g. after the Pi's card was replaced."""
    device = get_device(session, device_id)
    if device.status == "revoked":
        raise ApiError(409, "device_revoked", "a revoked device cannot be enrolled again")
    token = _issue_token(device)
    audit.record(
        session, "fleet.device.token", tenant_id=device.tenant_id, actor_id=actor_id,
        target=f"edge_device:{device.id}", ip=ip,
    )  # fmt: skip
    return token


def revoke_device(session: Session, device_id: uuid.UUID, *, actor_id: uuid.UUID, ip: str) -> EdgeDevice:
    device = get_device(session, device_id)
    now = utcnow()
    device.status = "revoked"
    device.revoked_at = now
    device.enroll_token_hash = None
    session.execute(
        update(EdgeDeviceKey)
        .where(EdgeDeviceKey.device_id == device.id, EdgeDeviceKey.status != "retired")
        .values(status="retired", retired_at=now)
    )
    audit.record(
        session, "fleet.device.revoke", tenant_id=device.tenant_id, actor_id=actor_id,
        target=f"edge_device:{device.id}", ip=ip,
    )  # fmt: skip
    return device


def enroll(session: Session, *, token: str, public_key: str, agent_version: str, ip: str) -> EnrollResponse:
    """Exchange a one-time token for a device identity. The session has the platform scope."""
    _validated_public_key(public_key)
    device = session.scalars(
        select(EdgeDevice).where(EdgeDevice.enroll_token_hash == hash_token(token)).with_for_update()
    ).first()
    now = utcnow()
    if device is None or device.enroll_expires_at is None or device.enroll_expires_at <= now:
        raise ApiError(401, "invalid_enrollment_token", "the enrolment token is unknown, used or expired")
    if device.status == "revoked":
        raise ApiError(401, "invalid_enrollment_token", "the device was revoked")
    device.enroll_token_hash = None  # single use
    device.enroll_expires_at = None
    # re-enrolment replaces every earlier key
    session.execute(
        update(EdgeDeviceKey)
        .where(EdgeDeviceKey.device_id == device.id, EdgeDeviceKey.status != "retired")
        .values(status="retired", retired_at=now)
    )
    key_id = new_key_id()
    session.add(
        EdgeDeviceKey(
            key_id=key_id, device_id=device.id, tenant_id=device.tenant_id, public_key=public_key,
            status="active", confirmed_at=now,
        )
    )  # fmt: skip
    device.status = "active"
    device.enrolled_at = now
    device.agent_version = agent_version
    try:
        session.flush()
    except IntegrityError as exc:  # the same public key registered for this device before
        raise ApiError(409, "key_reused", "generate a new key to enrol again") from exc
    library = session.get(Library, device.library_id)
    audit.record(
        session, "fleet.device.enroll", tenant_id=device.tenant_id, target=f"edge_device:{device.id}",
        ip=ip, detail={"key_id": key_id, "agent_version": agent_version},
    )  # fmt: skip
    return EnrollResponse(
        device_id=device.id,
        tenant_id=device.tenant_id,
        library_id=device.library_id,
        library_timezone=library.timezone if library else "UTC",
        key_id=key_id,
        pass_keys=pass_public_keys_text(session, device.tenant_id),
        config=device.config,
    )


# --- keys ------------------------------------------------------------------------------------------


# Read on every signed request: a fixed text skips building and compiling an ORM select each time.
_USABLE_KEY = text(
    f"""
    SELECT k.key_id, k.public_key, k.status, d.id, d.tenant_id, d.library_id,
           {row_tenant_scope_sql("d.tenant_id")}
    FROM edge_device_keys k JOIN edge_devices d ON d.id = k.device_id
    WHERE k.key_id = :key_id AND k.status IN ('active', 'pending') AND d.status = 'active'
    """  # noqa: S608 - a fixed fragment; the key id is bound
)


def find_device_key(session: Session, key_id: str) -> DeviceKey | None:
    """A usable (active or pending) key of a non-revoked device, looked up in platform scope; when
    found, the session is scoped to the key's tenant from then on (set by the same statement)."""
    row = session.execute(_USABLE_KEY, {"key_id": key_id}).first()
    if row is None:
        return None
    key = DeviceKey(*row[:6])
    tenant_scope_applied(session, key.tenant_id)
    return key


def confirm_key(session: Session, key: DeviceKey) -> None:
    """First request signed with a pending key: it becomes the device's only active key."""
    now = utcnow()
    session.execute(
        update(EdgeDeviceKey)
        .where(EdgeDeviceKey.device_id == key.device_id, EdgeDeviceKey.key_id != key.key_id)
        .where(EdgeDeviceKey.status != "retired")
        .values(status="retired", retired_at=now)
    )
    session.execute(
        update(EdgeDeviceKey)
        .where(EdgeDeviceKey.key_id == key.key_id)
        .values(status="active", confirmed_at=now)
    )
    audit.record(
        session, "fleet.device.key_confirmed", tenant_id=key.tenant_id,
        target=f"edge_device:{key.device_id}", detail={"key_id": key.key_id},
    )  # fmt: skip


def register_rotation_key(session: Session, device_id: uuid.UUID, public_key: str) -> str:
    """Register the device's next key as pending (idempotent by public key); the old key keeps working."""
    _validated_public_key(public_key)
    existing = session.scalars(
        select(EdgeDeviceKey).where(
            EdgeDeviceKey.device_id == device_id, EdgeDeviceKey.public_key == public_key
        )
    ).first()
    if existing is not None:
        if existing.status == "retired":
            raise ApiError(409, "key_reused", "this key was retired; generate a new one")
        return existing.key_id
    device = get_device(session, device_id)
    key_id = new_key_id()
    session.add(
        EdgeDeviceKey(
            key_id=key_id, device_id=device_id, tenant_id=device.tenant_id, public_key=public_key,
            status="pending",
        )
    )  # fmt: skip
    session.flush()
    return key_id


# --- fleet view ------------------------------------------------------------------------------------


def device_out(device: EdgeDevice, pending_commands: int = 0, now: dt.datetime | None = None) -> DeviceOut:
    now = now or utcnow()
    skew = device.clock_skew_seconds
    online = (
        device.status == "active"
        and device.last_seen_at is not None
        and now - device.last_seen_at <= ONLINE_WITHIN
    )
    return DeviceOut(
        id=device.id,
        tenant_id=device.tenant_id,
        library_id=device.library_id,
        name=device.name,
        status=device.status,
        agent_version=device.agent_version,
        enrolled_at=device.enrolled_at,
        revoked_at=device.revoked_at,
        last_seen_at=device.last_seen_at,
        online=online,
        queue_depth=device.queue_depth,
        dead_letters=device.dead_letters,
        clock_skew_seconds=skew,
        clock_skew_flagged=skew is not None and abs(skew) > SKEW_FLAG_SECONDS,
        events_received=device.events_received,
        pending_commands=pending_commands,
    )


def list_devices(session: Session) -> list[DeviceOut]:
    """Every device visible in the session's scope (a tenant, or all for the platform)."""
    rows = session.execute(
        select(EdgeCommand.device_id, func.count())
        .where(EdgeCommand.acked_at.is_(None))
        .group_by(EdgeCommand.device_id)
    ).all()
    pending: dict[uuid.UUID, int] = {row[0]: int(row[1]) for row in rows}
    devices = session.scalars(select(EdgeDevice).order_by(EdgeDevice.created_at)).all()
    now = utcnow()
    return [device_out(device, int(pending.get(device.id, 0)), now) for device in devices]


# --- remote commands -------------------------------------------------------------------------------


def command_out(command: EdgeCommand) -> CommandOut:
    return CommandOut(
        id=command.id, device_id=command.device_id, kind=command.kind, args=command.args,
        issued_at=command.issued_at, delivered_at=command.delivered_at, acked_at=command.acked_at,
        result=command.result,
    )  # fmt: skip


def queue_command(
    session: Session, device_id: uuid.UUID, kind: str, args: dict[str, Any], *, actor_id: uuid.UUID, ip: str
) -> EdgeCommand:
    device = get_device(session, device_id)
    if device.status != "active":
        raise ApiError(409, "device_not_active", f"the device is {device.status}")
    command = EdgeCommand(
        tenant_id=device.tenant_id, device_id=device.id, kind=kind, args=args, issued_by=actor_id
    )
    session.add(command)
    session.flush()
    session.refresh(command)
    audit.record(
        session, f"fleet.command.{kind}", tenant_id=device.tenant_id, actor_id=actor_id,
        target=f"edge_device:{device.id}", ip=ip, detail={"command_id": str(command.id), "args": args},
    )  # fmt: skip
    return command


def list_commands(session: Session, device_id: uuid.UUID) -> list[EdgeCommand]:
    get_device(session, device_id)
    rows = session.scalars(
        select(EdgeCommand).where(EdgeCommand.device_id == device_id).order_by(EdgeCommand.issued_at.desc())
    )
    return list(rows)
