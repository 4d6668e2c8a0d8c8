"""Request and response bodies of the tenancy routes."""

from __future__ import annotations

import datetime as dt
import uuid

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from cloud.identity.roles import Role


class TenantCreateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    owner_email: EmailStr
    owner_full_name: str = Field(default="", max_length=200)
    owner_password: str | None = Field(default=None, min_length=8, max_length=256)
    subscription_plan: str = Field(default="basic", max_length=50)


class TenantOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    slug: str
    subscription_plan: str
    status: str
    created_at: dt.datetime


class TenantCreatedOut(BaseModel):
    tenant: TenantOut
    owner_user_id: uuid.UUID


class InviteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr
    role: Role = Role.LIBRARY_STAFF


class InviteOut(BaseModel):
    id: uuid.UUID
    email: str
    role: str
    expires_at: dt.datetime
    token: str


class AcceptInviteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=10, max_length=200)
    password: str = Field(min_length=8, max_length=256)
    full_name: str = Field(default="", max_length=200)


class MemberOut(BaseModel):
    user_id: uuid.UUID
    tenant_id: uuid.UUID
    email: str
    full_name: str
    role: str
    status: str


class MemberPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role | None = None
    status: str | None = Field(default=None, pattern="^(active|revoked)$")
    pin: str | None = Field(default=None, pattern=r"^\d{4,6}$")
