"""Request and response bodies of the identity routes."""

from __future__ import annotations

import datetime as dt
import uuid

from pydantic import BaseModel, ConfigDict, EmailStr, Field

PASSWORD_FIELD = Field(min_length=8, max_length=256)


class RegisterIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr
    password: str = PASSWORD_FIELD
    full_name: str = Field(default="", max_length=200)
    phone: str | None = Field(default=None, max_length=32)


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr
    password: str = Field(min_length=1, max_length=256)
    tenant_id: uuid.UUID | None = None


class RefreshIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: str = Field(min_length=10, max_length=200)


class TokenPairOut(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"  # noqa: S105 - OAuth token type, not a secret
    expires_in: int
    role: str
    tenant_id: uuid.UUID | None


class UserOut(BaseModel):
    id: uuid.UUID
    email: str
    full_name: str
    phone: str | None
    status: str
    created_at: dt.datetime


class MeOut(UserOut):
    role: str
    tenant_id: uuid.UUID | None
    permissions: list[str]


class ProfilePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    full_name: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=32)


class EraseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: str = Field(min_length=1, max_length=256)


class OtpRequestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phone: str = Field(min_length=4, max_length=32)


class OtpVerifyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phone: str = Field(min_length=4, max_length=32)
    code: str = Field(pattern=r"^\d{6}$")
