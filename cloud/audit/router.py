"""Thin routes: a tenant's audit trail (owners) and chain verification (super admins)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlalchemy.orm import Session

from cloud.audit import anchor, service
from cloud.config import CloudSettings
from cloud.deps import (
    Principal,
    RequestContext,
    get_request_context,
    get_settings,
    platform_session,
    require,
    scoped_session,
)
from cloud.errors import ApiError
from cloud.identity.roles import Permission

router = APIRouter(tags=["audit"])


class AuditEntryOut(BaseModel):
    id: int
    actor_id: str | None
    action: str
    target: str
    ip: str
    detail: dict[str, Any] | None = Field(description="null once purged by the retention policy")
    occurred_at: dt.datetime


class AdminAuditEntryOut(AuditEntryOut):
    tenant_id: str | None
    actor_email: str | None


class VerificationOut(BaseModel):
    ok: bool
    rows_checked: int
    chains: int
    purged_details: int
    problems: list[dict[str, Any]]


@router.get("/api/v1/tenant/audit", response_model=list[AuditEntryOut])
def tenant_audit(
    limit: int = Query(100, ge=1, le=1000),
    principal: Principal = Depends(require(Permission.READ_AUDIT)),
    session: Session = Depends(scoped_session),
) -> list[AuditEntryOut]:
    if principal.tenant_id is None:
        raise ApiError(403, "tenant_required", "this action needs a tenant membership")
    rows = session.execute(
        text(
            "SELECT id, actor_id, action, target, ip, detail, occurred_at FROM audit_log "
            "WHERE tenant_id = :tenant ORDER BY id DESC LIMIT :limit"
        ),
        {"tenant": principal.tenant_id, "limit": limit},
    ).all()
    return [
        AuditEntryOut(
            id=row.id,
            actor_id=str(row.actor_id) if row.actor_id else None,
            action=row.action,
            target=row.target,
            ip=row.ip,
            detail=row.detail,
            occurred_at=row.occurred_at,
        )
        for row in rows
    ]


@router.get("/api/v1/admin/audit/verify", response_model=VerificationOut)
def verify(
    principal: Principal = Depends(require(Permission.ADMIN_SYSTEM)),
    session: Session = Depends(platform_session),
    ctx: RequestContext = Depends(get_request_context),
    settings: CloudSettings = Depends(get_settings),
) -> VerificationOut:
    """Every chain, and each one's head in the latest external anchor."""
    result = anchor.verify_with_anchor(session, anchor.anchor_path(settings.data_dir))
    service.record(session, "audit.verify", actor_id=principal.user_id, ip=ctx.ip, detail={"ok": result.ok})
    session.commit()
    return VerificationOut(
        ok=result.ok,
        rows_checked=result.rows_checked,
        chains=result.chains,
        purged_details=result.purged_details,
        problems=[p.__dict__ for p in result.problems],
    )


@router.get("/api/v1/admin/audit", response_model=list[AdminAuditEntryOut])
def search_audit(
    q: str | None = Query(
        None, min_length=1, max_length=200, description="substring of action, target, ip, detail, actor email"
    ),
    tenant_id: uuid.UUID | None = None,
    action: str | None = Query(None, min_length=1, max_length=100, description="exact, or a dotted prefix"),
    since: dt.datetime | None = Query(None, description="ISO 8601 with offset"),
    limit: int = Query(100, ge=1, le=1000),
    principal: Principal = Depends(require(Permission.ADMIN_SYSTEM)),
    session: Session = Depends(platform_session),
    ctx: RequestContext = Depends(get_request_context),
) -> list[AdminAuditEntryOut]:
    """Search every tenant's audit trail; the search itself is recorded on the platform chain."""
    if since is not None and since.tzinfo is None:
        raise ApiError(422, "validation_error", "since needs a UTC offset", {"field": "since"})
    query = service.AuditQuery(q=q, tenant_id=tenant_id, action=action, since=since, limit=limit)
    rows = service.search(session, query)
    filters = {key: str(value) for key, value in query.__dict__.items() if value is not None}
    service.record(session, "audit.search", actor_id=principal.user_id, ip=ctx.ip, detail=filters)
    session.commit()
    return [
        AdminAuditEntryOut(
            id=row.id,
            tenant_id=str(row.tenant_id) if row.tenant_id else None,
            actor_id=str(row.actor_id) if row.actor_id else None,
            actor_email=row.actor_email,
            action=row.action,
            target=row.target,
            ip=row.ip,
            detail=row.detail,
            occurred_at=row.occurred_at,
        )
        for row in rows
    ]
