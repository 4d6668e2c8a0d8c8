"""Owner/staff view of sync conflicts; importing this module installs the desk-sale sync handlers."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from sqlalchemy.orm import Session

from cloud.deps import Principal, require_role, scoped_session
from cloud.desk import service
from cloud.desk.schemas import SyncConflictOut
from cloud.errors import ApiError
from cloud.identity.roles import Role

router = APIRouter(tags=["desk"])
service.install()


@router.get("/api/v1/tenant/sync-conflicts", response_model=list[SyncConflictOut])
def list_sync_conflicts(
    limit: int = Query(100, ge=1, le=500),
    principal: Principal = Depends(require_role(Role.LIBRARY_STAFF, Role.LIBRARY_OWNER)),
    session: Session = Depends(scoped_session),
) -> list[SyncConflictOut]:
    """Walk-ins sold offline that met an online booking, newest first, with what was done."""
    if principal.tenant_id is None:
        raise ApiError(403, "tenant_required", "this action needs a tenant membership")
    conflicts = service.list_conflicts(session, principal.tenant_id, limit)
    return [SyncConflictOut.model_validate(conflict) for conflict in conflicts]
