"""Fleet API bodies (pydantic). The sync messages themselves are `shared.sync`."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

CommandKind = Literal["unlock_door", "reload_config", "rotate_key"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DeviceCreate(_In):
    library_id: uuid.UUID
    name: str = Field(min_length=1, max_length=100)
    config: dict[str, Any] = Field(default_factory=dict)


class DeviceOut(BaseModel):
    id: uuid.UUID
    tenant_id: uuid.UUID
    library_id: uuid.UUID
    name: str
    status: str
    agent_version: str
    enrolled_at: dt.datetime | None
    revoked_at: dt.datetime | None
    last_seen_at: dt.datetime | None
    online: bool
    queue_depth: int
    dead_letters: int
    clock_skew_seconds: float | None
    clock_skew_flagged: bool
    events_received: int
    pending_commands: int = 0


class EnrollmentToken(BaseModel):
    device: DeviceOut
    enrollment_token: str
    expires_at: dt.datetime


class EnrollRequest(_In):
    token: str = Field(min_length=16, max_length=200)
    public_key: str = Field(min_length=40, max_length=60)  # base64url of 32 raw bytes
    agent_version: str = Field(default="", max_length=50)


class EnrollResponse(BaseModel):
    device_id: uuid.UUID
    tenant_id: uuid.UUID
    library_id: uuid.UUID
    library_timezone: str
    key_id: str
    pass_keys: dict[str, str]
    config: dict[str, Any]


class KeyRotateRequest(_In):
    public_key: str = Field(min_length=40, max_length=60)


class KeyRotateResponse(BaseModel):
    key_id: str
    status: str


class CommandCreate(_In):
    kind: CommandKind
    args: dict[str, Any] = Field(default_factory=dict)


class CommandOut(BaseModel):
    id: uuid.UUID
    device_id: uuid.UUID
    kind: str
    args: dict[str, Any]
    issued_at: dt.datetime
    delivered_at: dt.datetime | None
    acked_at: dt.datetime | None
    result: dict[str, Any] | None
