"""Thin routes: /api/v1/auth/*, /api/v1/users/me, /.well-known/jwks.json."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy.orm import Session

from cloud.config import CloudSettings
from cloud.crypto import PiiCipher
from cloud.db import platform_scope
from cloud.deps import (
    Principal,
    RequestContext,
    current_principal,
    get_request_context,
    get_session,
    get_settings,
    get_token_service,
    platform_session,
    scoped_session,
)
from cloud.identity import otp, privacy, service
from cloud.identity.models import User
from cloud.identity.schemas import (
    EraseIn,
    LoginIn,
    MeOut,
    OtpRequestIn,
    OtpVerifyIn,
    ProfilePatch,
    RefreshIn,
    RegisterIn,
    TokenPairOut,
    UserOut,
)
from cloud.identity.tokens import TokenService
from cloud.openapi import errors

router = APIRouter()


def _pair_out(pair: service.TokenPair) -> TokenPairOut:
    return TokenPairOut(
        access_token=pair.access_token,
        refresh_token=pair.refresh_token,
        expires_in=pair.expires_in,
        role=pair.role.value,
        tenant_id=pair.tenant_id,
    )


def get_pii(request: Request) -> PiiCipher:
    pii: PiiCipher = request.app.state.pii
    return pii


def user_out(user: User, pii: PiiCipher) -> UserOut:
    return UserOut(
        id=user.id,
        email=user.email,
        full_name=user.full_name,
        phone=service.read_phone(user, pii),
        status=user.status,
        created_at=user.created_at,
    )


@router.post("/api/v1/auth/register", status_code=201, response_model=UserOut, tags=["auth"])
def register(
    body: RegisterIn,
    session: Session = Depends(platform_session),
    pii: PiiCipher = Depends(get_pii),
    ctx: RequestContext = Depends(get_request_context),
) -> UserOut:
    user = service.register(session, pii, body.email, body.password, body.full_name, body.phone, ctx.ip)
    return user_out(user, pii)


@router.post("/api/v1/auth/login", response_model=TokenPairOut, tags=["auth"], responses=errors(401, 403))
def login(
    body: LoginIn,
    session: Session = Depends(platform_session),
    settings: CloudSettings = Depends(get_settings),
    tokens: TokenService = Depends(get_token_service),
    ctx: RequestContext = Depends(get_request_context),
) -> TokenPairOut:
    pair = service.login(session, settings, tokens, body.email, body.password, body.tenant_id, ctx.ip)
    return _pair_out(pair)


@router.post("/api/v1/auth/refresh", response_model=TokenPairOut, tags=["auth"], responses=errors(401, 403))
def refresh(
    body: RefreshIn,
    session: Session = Depends(platform_session),
    settings: CloudSettings = Depends(get_settings),
    tokens: TokenService = Depends(get_token_service),
    ctx: RequestContext = Depends(get_request_context),
) -> TokenPairOut:
    return _pair_out(service.refresh(session, settings, tokens, body.refresh_token, ctx.ip))


@router.post("/api/v1/auth/logout", status_code=204, tags=["auth"])
def logout(
    body: RefreshIn,
    session: Session = Depends(platform_session),
    ctx: RequestContext = Depends(get_request_context),
) -> Response:
    service.logout(session, body.refresh_token, ctx.ip)
    return Response(status_code=204)


@router.get("/.well-known/jwks.json", tags=["auth"])
def jwks(tokens: TokenService = Depends(get_token_service)) -> dict[str, Any]:
    return tokens.jwks()


def _me(user: User, principal: Principal, pii: PiiCipher) -> MeOut:
    return MeOut(
        **user_out(user, pii).model_dump(),
        role=principal.role.value,
        tenant_id=principal.tenant_id,
        permissions=sorted(p.value for p in principal.permissions),
    )


@router.get("/api/v1/users/me", response_model=MeOut, tags=["users"])
def read_me(
    principal: Principal = Depends(current_principal),
    session: Session = Depends(scoped_session),
    pii: PiiCipher = Depends(get_pii),
) -> MeOut:
    return _me(service.get_user(session, principal.user_id), principal, pii)


@router.patch("/api/v1/users/me", response_model=MeOut, tags=["users"])
def update_me(
    body: ProfilePatch,
    principal: Principal = Depends(current_principal),
    session: Session = Depends(scoped_session),
    pii: PiiCipher = Depends(get_pii),
) -> MeOut:
    user = service.update_profile(session, pii, principal.user_id, body.full_name, body.phone)
    return _me(user, principal, pii)


@router.get("/api/v1/users/me/export", tags=["users"])
def export_me(
    request: Request,
    principal: Principal = Depends(current_principal),
    session: Session = Depends(get_session),
    ctx: RequestContext = Depends(get_request_context),
) -> dict[str, Any]:
    platform_scope(session, principal.user_id)  # the export spans tenants; it is about the caller only
    return privacy.export_user(session, request.app.state.pii, principal.user_id, ctx.ip)


@router.post("/api/v1/users/me/erase", status_code=204, tags=["users"])
def erase_me(
    body: EraseIn,
    principal: Principal = Depends(current_principal),
    session: Session = Depends(get_session),
    ctx: RequestContext = Depends(get_request_context),
) -> Response:
    platform_scope(session, principal.user_id)
    privacy.erase_user(session, principal.user_id, body.password, ctx.ip)
    return Response(status_code=204)


@router.post("/api/v1/auth/otp/request", status_code=202, tags=["auth"])
def request_otp(
    request: Request,
    body: OtpRequestIn,
    session: Session = Depends(platform_session),
    ctx: RequestContext = Depends(get_request_context),
) -> dict[str, str]:
    otp.request_code(session, request.app.state.otp_sender, request.app.state.pii, body.phone, ctx.ip)
    return {"status": "if the number belongs to an account, a code was sent"}


@router.post("/api/v1/auth/otp/verify", response_model=TokenPairOut, tags=["auth"], responses=errors(401))
def verify_otp(
    request: Request,
    body: OtpVerifyIn,
    session: Session = Depends(platform_session),
    settings: CloudSettings = Depends(get_settings),
    tokens: TokenService = Depends(get_token_service),
    ctx: RequestContext = Depends(get_request_context),
) -> TokenPairOut:
    pair = otp.verify_code(session, settings, tokens, request.app.state.pii, body.phone, body.code, ctx.ip)
    return _pair_out(pair)
