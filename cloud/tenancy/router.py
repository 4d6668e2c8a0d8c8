"""Thin routes: platform admin tenants, staff invitations, tenant members."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Depends
from sqlalchemy.orm import Session

from cloud.deps import (
    Principal,
    RequestContext,
    get_request_context,
    platform_session,
    require,
    require_tenant_member,
    scoped_session,
    tenant_of,
)
from cloud.identity.models import User
from cloud.identity.roles import Permission
from cloud.tenancy import service
from cloud.tenancy.schemas import (
    AcceptInviteIn,
    InviteIn,
    InviteOut,
    MemberOut,
    MemberPatch,
    TenantCreatedOut,
    TenantCreateIn,
    TenantOut,
)

router = APIRouter()
admin = require(Permission.ADMIN_SYSTEM)


@router.post("/api/v1/admin/tenants", status_code=201, response_model=TenantCreatedOut, tags=["admin"])
def create_tenant(
    body: TenantCreateIn,
    principal: Principal = Depends(admin),
    session: Session = Depends(platform_session),
    ctx: RequestContext = Depends(get_request_context),
) -> TenantCreatedOut:
    tenant, owner = service.create_tenant(
        session,
        name=body.name,
        owner_email=body.owner_email,
        owner_password=body.owner_password,
        owner_full_name=body.owner_full_name,
        subscription_plan=body.subscription_plan,
        actor_id=principal.user_id,
        ip=ctx.ip,
    )
    return TenantCreatedOut(tenant=TenantOut.model_validate(tenant), owner_user_id=owner.id)


@router.get("/api/v1/admin/tenants", response_model=list[TenantOut], tags=["admin"])
def list_tenants(principal: Principal = Depends(admin), session: Session = Depends(platform_session)) -> Any:
    return service.list_tenants(session)


@router.post("/api/v1/admin/tenants/{tenant_id}/suspend", response_model=TenantOut, tags=["admin"])
def suspend_tenant(
    tenant_id: uuid.UUID,
    principal: Principal = Depends(admin),
    session: Session = Depends(platform_session),
    ctx: RequestContext = Depends(get_request_context),
) -> Any:
    return service.set_tenant_status(session, tenant_id, "suspended", actor_id=principal.user_id, ip=ctx.ip)


@router.post("/api/v1/admin/tenants/{tenant_id}/reactivate", response_model=TenantOut, tags=["admin"])
def reactivate_tenant(
    tenant_id: uuid.UUID,
    principal: Principal = Depends(admin),
    session: Session = Depends(platform_session),
    ctx: RequestContext = Depends(get_request_context),
) -> Any:
    return service.set_tenant_status(session, tenant_id, "active", actor_id=principal.user_id, ip=ctx.ip)


@router.post("/api/v1/tenant/invitations", status_code=201, response_model=InviteOut, tags=["tenant"])
def invite_staff(
    body: InviteIn,
    principal: Principal = Depends(require_tenant_member(Permission.MANAGE_STAFF)),
    session: Session = Depends(scoped_session),
    ctx: RequestContext = Depends(get_request_context),
) -> InviteOut:
    invitation, token = service.invite_staff(
        session, tenant_of(principal), body.email, body.role, invited_by=principal.user_id, ip=ctx.ip
    )
    return InviteOut(
        id=invitation.id,
        email=invitation.email,
        role=invitation.role,
        expires_at=invitation.expires_at,
        token=token,
    )


@router.post("/api/v1/auth/accept-invite", response_model=MemberOut, tags=["auth"])
def accept_invite(
    body: AcceptInviteIn,
    session: Session = Depends(platform_session),
    ctx: RequestContext = Depends(get_request_context),
) -> MemberOut:
    membership = service.accept_invitation(session, body.token, body.password, body.full_name, ctx.ip)
    user = session.get(User, membership.user_id)
    assert user is not None
    return MemberOut(
        user_id=membership.user_id,
        tenant_id=membership.tenant_id,
        email=user.email,
        full_name=user.full_name,
        role=membership.role,
        status=membership.status,
    )


@router.get("/api/v1/tenant/members", response_model=list[MemberOut], tags=["tenant"])
def list_members(
    principal: Principal = Depends(require(Permission.READ_USERS)),
    session: Session = Depends(scoped_session),
) -> list[MemberOut]:
    tenant_of(principal)
    return [MemberOut(**member.__dict__) for member in service.list_members(session)]


@router.patch("/api/v1/tenant/members/{user_id}", response_model=MemberOut, tags=["tenant"])
def update_member(
    user_id: uuid.UUID,
    body: MemberPatch,
    principal: Principal = Depends(require_tenant_member(Permission.MANAGE_STAFF)),
    session: Session = Depends(scoped_session),
    ctx: RequestContext = Depends(get_request_context),
) -> MemberOut:
    member = service.update_member(
        session,
        tenant_of(principal),
        user_id,
        role=body.role,
        status=body.status,
        pin=body.pin,
        actor_id=principal.user_id,
        ip=ctx.ip,
    )
    return MemberOut(**member.__dict__)
